// The SFT loss of one micro-batch: the summed NLL of its trained targets
// (train/batch_tensors.h), its LM-head weight gradient sunk at the step's
// scale. SFT's items are trained tokens.
#pragma once

#include "datasets/batching.h"
#include "model/llama.h"
#include "train/step.h"

namespace st::sft {

/// The loss callback of train/run.h for SFT, with `chunk_rows` tokens per
/// LM-head chunk.
train::MicroBatchLoss sft_loss(const LlamaModel& model, const datasets::Batch& batch, const train::StepScale& scale,
                               int64_t chunk_rows);

}  // namespace st::sft
