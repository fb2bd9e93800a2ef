// The command line of a training recipe (sft, dpo): RECIPE, overrides,
// --resume [DIR], --print-recipe, and --help listing the recipe's keys and
// what --resume may change.
#pragma once

#include <functional>
#include <string>

#include "common/recipe.h"
#include "common/recipe_schema.h"
#include "train/run.h"

namespace st::cli {

struct TrainingCommand {
  const char* name;         // "sft"
  std::string description;  // the --help paragraph
  RecipeSchema schema;
  std::function<train::RunOutcome(const Recipe&, const train::LaunchOptions&)> run;
};

/// Parses the arguments, loads the recipe and runs it; the exit code
/// (128 + the signal for a run stopped by SIGINT/SIGTERM).
int run_training_command(const TrainingCommand& command, int argc, char** argv);

}  // namespace st::cli
