// The SFT recipe: the keys of [training], [optimizer], [schedule],
// [checkpointing] and [logging] (the data keys are datasets/data_config.h's),
// and the typed configuration read from them.
#pragma once

#include <string>
#include <vector>

#include "common/recipe.h"
#include "datasets/data_config.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace st::sft {

/// Every key an SFT recipe may hold: model/data plus training sections.
RecipeSchema sft_schema();

struct SftConfig {
  data::DataConfig data;
  std::string dtype = "float32";  // of the model: float32 or bfloat16
  std::string device = "auto";
  bool activation_checkpointing = false;
  std::string output_dir;
  int64_t epochs = 1, max_steps = 0;
  int64_t micro_batch_rows = 1, grad_accumulation = 1;
  double max_grad_norm = 1.0;
  bool stop_on_nonfinite = true;
  int64_t threads = 0;
  int64_t lm_head_chunk = 4096;
  train::AdamWOptions optimizer;
  bool master_weights = true;
  train::ScheduleKind schedule = train::ScheduleKind::kCosine;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0;
  double min_lr_ratio = 0;
  int64_t checkpoint_every = 0, keep_last = 2;
  int64_t log_every = 10, eval_every = 0, eval_max_batches = 0;
  std::vector<std::string> sample_prompts;
  int64_t sample_max_new_tokens = 32;
  bool dump_batches = false, plot = true;
};

SftConfig sft_config(const Recipe& recipe);

}  // namespace st::sft
