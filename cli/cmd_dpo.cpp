// salamandra-tune dpo: preference optimisation from a recipe.
#include "cli/commands.h"
#include "cli/training_command.h"
#include "dpo/dpo_config.h"
#include "dpo/dpo_run.h"

namespace st::cli {

int run_dpo(int argc, char** argv) {
  return run_training_command(
      {"dpo",
       "Preference optimisation: trains the recipe's model on preference pairs (prompt, chosen, rejected)\n"
       "with TRL's losses (DPO's sigmoid by default; [dpo] loss), against a frozen reference (the initial\n"
       "policy, a model dir, or with LoRA the base with the adapters off), or reference-free (simpo, orpo).\n"
       "Checkpoints, evaluation, metrics.jsonl with TRL's metric names, a plot of loss, reward margin and\n"
       "accuracy, and the final dir in training.output_dir/final. --resume [DIR] continues a run exactly.",
       dpo::dpo_schema(), dpo::run_dpo},
      argc, argv);
}

}  // namespace st::cli
