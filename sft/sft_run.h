// The SFT recipe end to end: the training skeleton (train/run.h) with SFT's
// loss over chat data.
#pragma once

#include <string>

#include "common/recipe.h"
#include "train/run.h"

namespace st::sft {

/// Runs an SFT recipe (loaded with sft_schema()).
train::RunOutcome run_sft(const Recipe& recipe, const train::LaunchOptions& launch);

}  // namespace st::sft
