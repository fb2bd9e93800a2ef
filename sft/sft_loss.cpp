#include "sft/sft_loss.h"

#include "train/batch_tensors.h"

namespace st::sft {

train::MicroBatchLoss sft_loss(const LlamaModel& model, const datasets::Batch& batch, const train::StepScale& scale,
                               int64_t chunk_rows) {
  const train::BatchTensors t = train::to_tensors(batch, model.options().device());
  if (t.trained == 0) return {};
  return {train::summed_nll(model, t, chunk_rows, scale.summed_loss_sink()), {}};
}

}  // namespace st::sft
