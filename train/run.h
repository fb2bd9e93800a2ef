// One training run, the same for every recipe: setup (the checkpoint to
// resume and the settings it must share, device, data splits, model,
// optimizer, plan; only then the run dir, its resolved recipe and logs), the
// loop (schedule, steps, metrics and progress, evaluation with sample
// replies, checkpoints) and cleanup (the last checkpoint, the final HF dir,
// the plot), or a graceful stop on SIGINT/SIGTERM. A recipe supplies only
// what is its own: the kind of data it trains on, what an item is, and its
// loss callback (RecipeHooks); sft/ is the first, dpo/ the next.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/recipe.h"
#include "datasets/batching.h"
#include "datasets/readers.h"
#include "datasets/token_cache.h"
#include "model/llama.h"
#include "train/process_group.h"
#include "train/run_config.h"
#include "train/step.h"

namespace st::train {

/// How the command line starts a run.
struct LaunchOptions {
  bool resume = false;
  std::string resume_from;    // a checkpoint dir; "" : the newest in output_dir
  bool print_recipe = false;  // the resolved recipe on stdout too (it is always in run/recipe.toml)
};

/// How a run ended: finished (final_dir set), or stopped by SIGINT/SIGTERM
/// after writing a checkpoint (stop_signal set; the exit code is 128 + it).
struct RunOutcome {
  std::string final_dir;
  int stop_signal = 0;
};

/// A split's samples as the rows batches are cut from: each sample's length
/// and the view a batch is materialised through.
struct SampleRows {
  std::vector<uint32_t> lengths;
  datasets::SequenceView view;
  /// The longest row a batch may hold (0: data.max_length), for samples
  /// longer than one sequence (DPO lays a pair out as one row).
  uint32_t row_tokens = 0;
};

/// The token caches of a run's splits, for a recipe's setup (eval: null
/// when there is no eval split; the train cache's dir when it is held out of it).
struct TrainingData {
  const datasets::TokenCache* train = nullptr;
  const datasets::TokenCache* eval = nullptr;
  bool resumed = false;  // the model holds a checkpoint's weights, not the initial ones
  /// Where training computes. The model is there too, except under fsdp,
  /// whose whole model is in host memory until it is sharded (after this
  /// hook): a live reference model belongs here, not beside the model.
  at::Device device = at::kCPU;
};

/// What a recipe puts into the run.
struct RecipeHooks {
  std::string name;  // "sft": the plot's title, messages
  /// The data it trains on (a training file of another kind is an error).
  datasets::SampleKind kind = datasets::SampleKind::kChat;
  /// The items of a batch: the step's normalizer (sft: trained tokens),
  /// logged per step under `items_name`.
  std::function<int64_t(const datasets::Batch&)> items;
  std::string items_name;
  /// Whether the loss is a mean NLL per token, so exp(loss) is a perplexity
  /// worth reporting at evaluation (SFT's; not DPO's).
  bool perplexity = true;
  /// Metrics drawn in panels of their own in training.svg: (metric, title).
  std::vector<std::pair<std::string, std::string>> plot_metrics;
  /// Optional: the cache's samples as rows (DPO: a pair as one row). By
  /// default each sequence of the cache is a sample.
  std::function<SampleRows(const datasets::TokenCache&)> sample_rows;
  /// Optional: counts of a batch that the loss needs as totals of the whole
  /// step (DPO's chosen tokens, the sft term's normalizer): summed over the
  /// step's micro-batches and the processes into StepScale::totals, and over
  /// the eval split for evaluation.
  std::function<std::map<std::string, double>(const datasets::Batch&)> counts;
  /// Optional: after the model is loaded and adapted, before anything is
  /// written to the run dir (DPO: its reference model, or the precomputed
  /// reference log-probs).
  std::function<void(LlamaModel&, const TrainingData&)> before_training;
  /// Optional: adapts the loaded model before training (wraps projections
  /// with adapters, freezes the base). A resumed run then restores the
  /// adapters from the checkpoint (load_adapter, or the adapter tensors kept
  /// beside a checkpoint's HF weights).
  std::function<void(LlamaModel&)> prepare_model;
  /// Optional, with prepare_model, for adapter training (LoRA): checkpoints
  /// and the final dir hold what this writes into a dir (the adapter, as a
  /// PEFT adapter dir) instead of the HF weights, and a resumed run reads
  /// the base from model.path again and restores the adapter with
  /// load_adapter from the checkpoint dir.
  std::function<void(const LlamaModel&, const std::string& dir)> save_adapter;
  std::function<void(const std::string& dir, LlamaModel&)> load_adapter;
  /// The summed loss of one micro-batch, and its named metric sums, under
  /// the step's scale. Evaluation calls it without gradients and with a
  /// scale that has no sink.
  std::function<MicroBatchLoss(const LlamaModel&, const datasets::Batch&, const StepScale&)> loss;
};

/// Runs the recipe. The first SIGINT or SIGTERM stops it gracefully after
/// the current optimizer step (checkpoint, metrics, plot); a second one ends
/// the process at once (common/stop_request.h).
RunOutcome run_training(const Recipe& recipe, const RunConfig& config, const RecipeHooks& hooks,
                        const LaunchOptions& launch, ProcessGroup& group);

}  // namespace st::train
