// salamandra-tune merge: one or more LoRA adapters merged into a base model,
// written as a complete HF model dir, streamed and self-checked (lora/merge.h).
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "lora/merge.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "cli/progress.h"

namespace st::cli {

int run_merge(int argc, char** argv) {
  lora::MergeOptions options;
  std::vector<std::string> adapters, weights;
  std::string dtype = "bfloat16";
  int64_t max_shard_mb = 5000;
  bool no_check = false;
  Args args("merge", "Merges LoRA adapters into a base model: W + sum_i w_i dW_i, added in fp32 and rounded\n"
                     "once to --dtype, streamed tensor by tensor into a complete HF model dir (sharded\n"
                     "safetensors + index, config.json, generation_config.json, tokenizer files and chat\n"
                     "template). Then compares the merged model's logits with the base + adapters on a\n"
                     "probe batch and fails (writing nothing) beyond the bound derived for the dtype.");
  args.option("base", "DIR", "the base model dir", &options.base_dir, true);
  args.repeated("adapter", "DIR", "a PEFT LoRA adapter dir (repeat for several)", &adapters);
  args.repeated("weight", "W", "the weight of the adapter at the same position [default: 1 each]", &weights);
  args.option("out", "DIR", "the merged model dir (must not exist unless --force)", &options.out_dir, true);
  args.option("dtype", "T", "bfloat16, float16 or float32: the dtype of the written weights", &dtype);
  args.option("max-shard-mb", "N", "shard size limit in MB (transformers' max_shard_size)", &max_shard_mb);
  args.flag("force", "replace --out if it exists", &options.force);
  args.flag("no-check", "skip the logit self-check", &no_check);
  if (!args.parse(argc, argv)) return 0;
  if (adapters.empty()) throw UsageError("merge needs at least one --adapter DIR");
  options.dtype = written_dtype(dtype);
  options.max_shard_bytes = shard_bytes(max_shard_mb);
  options.self_check = !no_check;
  options.adapters = weighted_adapters(adapters, weights);
  options.progress = progress_printer("merge", "MB", 1e6, 1);

  const lora::MergeReport report = lora::merge_adapters(options);
  std::printf("merged %zu adapter%s into %lld of %lld tensors (%s), tokenizer files from %s\n", adapters.size(),
              adapters.size() == 1 ? "" : "s", static_cast<long long>(report.merged_tensors),
              static_cast<long long>(report.tensors), dtype.c_str(), report.tokenizer_from.c_str());
  if (report.checked)
    std::printf("self-check: max |logit difference| %.3g over %lld probe tokens (bound %.3g = 2 x %.3g from "
                "rounding to %s + 1e-5 relative): ok\n",
                report.max_logit_difference, static_cast<long long>(report.probe_tokens), report.bound,
                report.rounding_effect, dtype.c_str());
  std::printf("merged model: %s\n", options.out_dir.c_str());
  return 0;
}

}  // namespace st::cli
