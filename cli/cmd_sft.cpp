// salamandra-tune sft: supervised fine-tuning from a recipe.
#include "cli/commands.h"
#include "cli/training_command.h"
#include "sft/sft_config.h"
#include "sft/sft_run.h"

namespace st::cli {

int run_sft(int argc, char** argv) {
  return run_training_command(
      {"sft",
       "Supervised fine-tuning: trains the recipe's model on its chat data (prepared into the token cache\n"
       "first), with checkpoints, evaluation, metrics.jsonl, a loss plot, and the final Hugging Face model\n"
       "dir in training.output_dir/final. --resume [DIR] continues a run exactly where its last (or the\n"
       "given) checkpoint left it.",
       sft::sft_schema(), sft::run_sft},
      argc, argv);
}

}  // namespace st::cli
