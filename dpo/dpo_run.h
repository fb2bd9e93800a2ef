// The DPO recipe end to end: the training skeleton (train/run.h) over
// preference pairs with the preference losses (dpo_loss.h) and a reference
// model (reference.h), full or with LoRA adapters.
#pragma once

#include "common/recipe.h"
#include "train/run.h"

namespace st::dpo {

/// Runs a DPO recipe (loaded with dpo_schema()).
train::RunOutcome run_dpo(const Recipe& recipe, const train::LaunchOptions& launch);

}  // namespace st::dpo
