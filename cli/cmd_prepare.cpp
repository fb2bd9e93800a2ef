// salamandra-tune prepare: tokenize a recipe's data once, on all cores, into
// the memory-mapped token cache that training reads. A cache built from the
// same inputs is reused; a stale one is rebuilt.
#include <unistd.h>

#include <cstdio>

#include "common/error.h"
#include "datasets/data_config.h"
#include "datasets/prepare.h"
#include "dpo/dpo_config.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/data_report.h"
#include "cli/progress.h"

namespace st::cli {

int run_prepare(int argc, char** argv) {
  std::string recipe_path;
  std::vector<std::string> overrides;
  Args args("prepare",
            "Tokenizes the recipe's training (and eval) data through the model's chat template into the\n"
            "token cache (data.cache_dir), and reports samples, tokens, drops, truncations and packing.");
  args.positional("RECIPE", "the recipe (TOML)", &recipe_path);
  args.rest("section.key=value", "override a recipe key", &overrides);
  args.epilog("data keys (the recipe's [model] path and [data] section):\n" + describe_schema(datasets::data_schema()));
  if (!args.parse(argc, argv)) return 0;

  // dpo recipes hold every key an sft recipe may: both load with its schema.
  const Recipe recipe = Recipe::load(recipe_path, dpo::dpo_schema(), overrides);
  const datasets::DataConfig config = datasets::data_config(recipe);
  const datasets::EncoderBundle encoder = datasets::load_encoder(config);
  std::printf("model: %s\nchat template: %s\ntokenizer threads: %d\n", config.model_dir.c_str(),
              encoder.chat_template.origin().c_str(), config.workers);

  auto report_split = [&](const std::vector<std::string>& files, const std::string& split) {
    datasets::PrepareReport report;
    const std::string dir =
        datasets::prepare_split(config, encoder, files, split, &report, progress_printer("encoding " + split, "samples"));
    if (!report.reused && ::isatty(STDERR_FILENO)) std::fputc('\n', stderr);  // end the progress line
    const datasets::TokenCache cache = datasets::TokenCache::open(dir);
    const datasets::BatchOptions batching = datasets::batch_options(config, 1);
    datasets::PlanStats plan;
    if (report.kind == datasets::SampleKind::kChat) {
      const std::vector<uint32_t> lengths = cache.lengths();
      std::vector<uint32_t> all(lengths.size());
      for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
      plan = datasets::plan_stats(datasets::plan_epoch(lengths, all, batching, 0), cache.view(), batching);
    }
    print_split_report(stdout, report, plan, batching, encoder.chat_template.origin());
  };
  report_split(config.train_files, "train");
  if (!config.eval_files.empty()) report_split(config.eval_files, "eval");
  return 0;
}

}  // namespace st::cli
