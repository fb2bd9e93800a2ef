// The SFT recipe end to end: data (token cache) -> model -> the training
// loop with exact gradient accumulation -> checkpoints -> the final model dir.
#pragma once

#include <string>

#include "common/recipe.h"
#include "sft/sft_config.h"

namespace st::sft {

struct ResumeRequest {
  bool resume = false;
  std::string from;  // a checkpoint dir; "" : the newest in output_dir
};

/// Runs the recipe; returns the final model dir.
std::string run_sft(const Recipe& recipe, const SftConfig& config, const ResumeRequest& resume);

}  // namespace st::sft
