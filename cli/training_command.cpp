// The shared command line of the training recipes.
#include "cli/training_command.h"

#include <vector>

#include "cli/args.h"

namespace st::cli {
namespace {

// Which keys --resume lets change, read from the schema's flags.
std::string resume_note(const RecipeSchema& schema) {
  std::string changeable;
  for (const KeySpec& spec : schema)
    if (spec.resumable) changeable += (changeable.empty() ? "" : ", ") + spec.key;
  return "Ctrl-C or SIGTERM stops after the current optimizer step with a checkpoint (exit 130 or 143; a\n"
         "second signal stops at once). --resume may change " + changeable + " (extending a finished run)\n"
         "and every key that changes no result (training.output_dir, data.cache_dir, threads, logging.*,\n"
         "checkpointing.*); it refuses any other change and names the keys.";
}

}  // namespace

int run_training_command(const TrainingCommand& command, int argc, char** argv) {
  // `--resume` takes an optional checkpoint dir: turn "--resume DIR" into
  // --resume --resume-from DIR before the parser sees it.
  std::vector<std::string> words(argv, argv + argc);
  std::vector<std::string> rewritten;
  for (size_t i = 0; i < words.size(); ++i) {
    rewritten.push_back(words[i]);
    if (words[i] == "--resume" && i + 1 < words.size() && words[i + 1].rfind("--", 0) != 0 &&
        words[i + 1].find('=') == std::string::npos && i > 0) {
      rewritten.push_back("--resume-from");
      rewritten.push_back(words[++i]);
    }
  }
  std::vector<char*> args_v;
  for (auto& w : rewritten) args_v.push_back(w.data());

  std::string recipe_path, resume_from;
  std::vector<std::string> overrides;
  bool resume = false, print_recipe = false;
  Args args(command.name, command.description);
  args.positional("RECIPE", "the recipe (TOML)", &recipe_path);
  args.rest("section.key=value", "override a recipe key", &overrides);
  args.flag("resume", "continue from the newest checkpoint in training.output_dir (or --resume DIR)", &resume);
  args.option("resume-from", "DIR", "continue from this checkpoint dir", &resume_from);
  args.flag("print-recipe", "print the resolved recipe (it is always written to training.output_dir/recipe.toml)",
            &print_recipe);
  const RecipeSchema& schema = command.schema;
  args.epilog(resume_note(schema) + "\n\nrecipe keys:\n" + describe_schema(schema));
  if (!args.parse(static_cast<int>(args_v.size()), args_v.data())) return 0;
  if (!resume_from.empty()) resume = true;

  const Recipe recipe = Recipe::load(recipe_path, schema, overrides);
  const train::RunOutcome outcome = command.run(recipe, {resume, resume_from, print_recipe});
  return outcome.stop_signal ? 128 + outcome.stop_signal : 0;
}

}  // namespace st::cli
