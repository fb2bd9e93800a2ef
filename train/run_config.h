// The keys every training recipe shares -- [model] dtype/device/
// recomputation, [training], [optimizer], [schedule], [checkpointing],
// [logging] -- and the typed configuration of a run read from them (with
// the data keys of datasets/data_config.h). Defaults live in the schema
// only: RunConfig's (and DataConfig's) fields hold what a loaded recipe
// says, and no defaults of their own.
#pragma once

#include <string>
#include <vector>

#include "common/recipe.h"
#include "datasets/data_config.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace st::train {

/// The shared training keys (without the data keys).
RecipeSchema training_schema();

/// [distributed]: how the processes of a torchrun/srun launch train together.
struct DistributedConfig {
  std::string mode;     // ddp or fsdp
  std::string backend;  // auto, gloo or nccl
  int64_t bucket_mb{};
  bool overlap{};
  int64_t timeout_s{};
};

struct RunConfig {
  datasets::DataConfig data;
  DistributedConfig distributed;
  std::string dtype;  // of the model: float32 or bfloat16
  std::string device;
  bool activation_checkpointing{};
  std::string output_dir;
  int64_t epochs{}, max_steps{};
  int64_t micro_batch_rows{}, grad_accumulation{};
  double max_grad_norm{};
  bool stop_on_nonfinite{};
  int64_t threads{};
  int64_t lm_head_chunk{};
  AdamWOptions optimizer;
  bool master_weights{};
  ScheduleKind schedule{};
  int64_t warmup_steps{};
  double warmup_ratio{};
  double min_lr_ratio{};
  int64_t checkpoint_every{}, keep_last{};
  int64_t log_every{}, eval_every{}, eval_max_batches{};
  std::vector<std::string> sample_prompts;
  int64_t sample_max_new_tokens{};
  bool dump_batches{}, plot{};
};

/// Reads a recipe loaded with data_schema() + training_schema() (+ the
/// recipe's own keys).
RunConfig run_config(const Recipe& recipe);

}  // namespace st::train
