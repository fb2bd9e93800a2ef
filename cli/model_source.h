// --model DIR [--adapter DIR]: the model a command runs, a base model dir
// with an optional PEFT adapter dir applied unmerged (lora/adapter.h), as
// PeftModel.from_pretrained applies one. Shared by score, generate and
// eval-tasks.
#pragma once

#include <c10/core/TensorOptions.h>

#include <memory>
#include <string>
#include <vector>

#include "lora/merge.h"
#include "model/llama.h"

namespace st::cli {

class Args;

struct ModelSource {
  std::string model_dir, adapter_dir;
  /// Declares --model (required) and --adapter on `args`.
  void add_to(Args& args);
  /// The model, with the adapter when one was given (its tensors in fp32).
  std::unique_ptr<LlamaModel> load(const at::TensorOptions& options) const;
  /// Where the tokenizer files and chat template are read: the adapter dir
  /// when it carries them (ours do, as PEFT and TRL save them), else the model dir.
  std::string tokenizer_dir() const;
};

/// The dtype of written weights from --dtype (bfloat16, float16 or
/// float32), and --max-shard-mb in bytes, as merge and export take them;
/// UsageError otherwise (`other_types` names what else the command takes).
at::ScalarType written_dtype(const std::string& dtype, const std::string& other_types = "");
uint64_t shard_bytes(int64_t max_shard_mb);

/// --adapter DIR and --weight W, repeated, as merge and export take them:
/// one weight per adapter, or none (all 1). UsageError otherwise.
std::vector<lora::WeightedAdapter> weighted_adapters(const std::vector<std::string>& adapters,
                                                     const std::vector<std::string>& weights);

}  // namespace st::cli
