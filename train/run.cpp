#include "train/run.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/Context.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "common/atomic_dir.h"
#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/resident_memory.h"
#include "common/stop_request.h"
#include "datasets/prepare.h"
#include "datasets/sample_encoder.h"
#include "datasets/unrendered_fields.h"
#include "eval/sample_replies.h"
#include "model/model_card.h"
#include "model/model_dir.h"
#include "model/out_of_memory.h"
#include "train/checkpoint.h"
#include "train/metrics_log.h"
#include "train/plot.h"
#include "train/sharded_model.h"

namespace fs = std::filesystem;

namespace st::train {
namespace {

using Clock = std::chrono::steady_clock;

at::Device pick_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  const bool cuda = at::hasCUDA();
  if (name == "cuda" && !cuda) fail("model.device = \"cuda\" but no CUDA device is available");
  return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

// A split as the loop sees it: the cache, its samples as rows, which of
// them belong to the split, and the view batches are materialised through.
struct Split {
  datasets::TokenCache cache;
  std::vector<uint32_t> lengths;
  std::vector<uint32_t> members;
  datasets::SequenceView view;  // built once: materialising a batch uses it per sample
  uint32_t row_tokens = 0;      // the recipe's longest row (0: data.max_length)
};

// The samples of a cache: its sequences, or the recipe's rows of them.
SampleRows sample_rows(const datasets::TokenCache& cache, const RecipeHooks& hooks) {
  if (hooks.sample_rows) return hooks.sample_rows(cache);
  return {cache.lengths(), cache.view(), 0};
}

// `members` empty: every sample of the cache.
Split open_split(const std::string& dir, std::vector<uint32_t> members, const RecipeHooks& hooks) {
  Split s{datasets::TokenCache::open(dir), {}, std::move(members)};
  SampleRows rows = sample_rows(s.cache, hooks);
  s.lengths = std::move(rows.lengths);
  s.view = std::move(rows.view);
  s.row_tokens = rows.row_tokens;
  if (s.members.empty())
    for (uint32_t i = 0; i < s.lengths.size(); ++i) s.members.push_back(i);
  return s;
}

// The recipe's counts of a batch (RecipeHooks::counts), added into `totals`.
void add_counts(const RecipeHooks& hooks, const datasets::Batch& batch, std::map<std::string, double>& totals) {
  if (!hooks.counts) return;
  for (const auto& [name, value] : hooks.counts(batch)) totals[name] += value;
}

nlohmann::json batch_json(const datasets::Batch& b) {
  return {{"rows", b.rows}, {"cols", b.cols},         {"ids", b.ids},
          {"position_ids", b.position_ids}, {"document", b.document}, {"loss_mask", b.loss_mask}};
}

// The recipe's loss and metrics per item over the eval split (at most
// max_batches), its counts totalled over those batches as a step's are.
struct Evaluation {
  double loss = std::nan("");
  std::map<std::string, double> metrics;
};
// Each process evaluates every world_size-th batch; the sums are added up.
// Fully sharded (`sharded`), every process runs as many forwards, each
// gathering the layers with the others: a process short of a batch (or
// with one without items) runs the split's first batch with items instead,
// and counts nothing of it.
Evaluation evaluate(const LlamaModel& model, const Split& split, const datasets::BatchOptions& options,
                    int64_t max_batches, const RecipeHooks& hooks, int32_t pad_id, ProcessGroup& group,
                    bool sharded) {
  at::NoGradGuard no_grad;
  const auto plan = datasets::plan_epoch(split.lengths, split.members, options, 0);
  const size_t used = max_batches > 0 ? std::min(plan.size(), static_cast<size_t>(max_batches)) : plan.size();
  StepScale scale;
  scale.evaluation = true;
  // The totals first, a batch at a time (materialising is cheap; holding
  // every eval batch would not be).
  if (hooks.counts)
    for (size_t b = 0; b < used; ++b)
      add_counts(hooks, datasets::materialize(plan[b], split.view, options, pad_id), scale.totals);
  double sum = 0;
  int64_t count = 0;
  std::map<std::string, double> metric_sums;
  const size_t processes = static_cast<size_t>(group.world_size());
  std::optional<datasets::Batch> stand_in;
  if (sharded)
    for (size_t b = 0; b < used && !stand_in; ++b) {
      datasets::Batch batch = datasets::materialize(plan[b], split.view, options, pad_id);
      if (hooks.items(batch) > 0) stand_in = std::move(batch);
    }
  const size_t slots = stand_in ? (used + processes - 1) / processes : 0;
  for (size_t k = 0, b = static_cast<size_t>(group.rank()); b < used || k < slots; ++k, b += processes) {
    const datasets::Batch batch =
        b < used ? datasets::materialize(plan[b], split.view, options, pad_id) : datasets::Batch{};
    const int64_t items = b < used ? hooks.items(batch) : 0;
    if (items == 0) {
      if (stand_in) hooks.loss(model, *stand_in, scale);  // the gathers only
      continue;
    }
    const MicroBatchLoss loss = hooks.loss(model, batch, scale);
    sum += loss.summed.item<double>();
    for (const auto& [name, value] : loss.metric_sums) metric_sums[name] += value;
    count += items;
  }
  if (processes > 1) {
    agree_metric_names(group, metric_sums);
    std::vector<double> sums{sum, static_cast<double>(count)};
    for (const auto& [name, value] : metric_sums) sums.push_back(value);
    sums = group.sum_values(sums);
    sum = sums[0];
    count = static_cast<int64_t>(sums[1]);
    size_t k = 2;
    for (auto& [name, value] : metric_sums) value = sums[k++];
  }
  Evaluation result;
  if (count == 0) return result;
  result.loss = sum / static_cast<double>(count);
  for (const auto& [name, value] : metric_sums) result.metrics[name] = value / static_cast<double>(count);
  return result;
}

// "key = value" lines of Recipe::canonical() as a map.
std::map<std::string, std::string> canonical_values(const std::string& text) {
  std::map<std::string, std::string> values;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t eq = line.find(" = ");
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 3);
    else if (line.ends_with(" unset")) values[line.substr(0, line.size() - 6)] = "(unset)";
    start = end + 1;
  }
  return values;
}

// The keys whose values differ between a checkpoint's settings and the
// recipe's, one "key: old -> new" line each.
std::string changed_keys(const std::string& before, const std::string& now) {
  const auto old_values = canonical_values(before), new_values = canonical_values(now);
  std::string out;
  auto value = [](const std::map<std::string, std::string>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? std::string("(not a key then)") : it->second;
  };
  std::set<std::string> keys;
  for (const auto* values : {&old_values, &new_values})
    for (const auto& [key, _] : *values) keys.insert(key);
  for (const std::string& key : keys)
    if (value(old_values, key) != value(new_values, key))
      out += cat("\n  ", key, ": ", value(old_values, key), " in the checkpoint, ", value(new_values, key), " now");
  return out;
}

void write_plot(const std::string& run_dir, const std::vector<nlohmann::json>& records, const RecipeHooks& hooks) {
  std::vector<PlotPoint> loss, eval, lr;
  std::vector<PlotPanel> panels;
  for (const auto& [metric, title] : hooks.plot_metrics) panels.push_back({title, {}, {}});
  for (const auto& r : records) {
    const double step = r.value("step", 0.0);
    if (r.contains("loss")) loss.push_back({step, r["loss"].get<double>()});
    if (r.contains("lr")) lr.push_back({step, r["lr"].get<double>()});
    if (r.contains("eval_loss")) eval.push_back({step, r["eval_loss"].get<double>()});
    for (size_t i = 0; i < panels.size(); ++i) {
      const std::string& metric = hooks.plot_metrics[i].first;
      if (r.contains(metric)) panels[i].train.push_back({step, r[metric].get<double>()});
      if (r.contains("eval_" + metric)) panels[i].eval.push_back({step, r["eval_" + metric].get<double>()});
    }
  }
  write_training_plot((fs::path(run_dir) / "training.svg").string(), loss, eval, lr, "salamandra-tune " + hooks.name,
                      panels);
}

// One run's state, set up in stages and then trained: setup (the run dir's
// checks, data, model and optimizer, plan; nothing is written to the run dir
// until all of it succeeded, so a refused or failed start changes nothing),
// train (the loop, which a stop request ends after a step), cleanup (the
// last evaluation and checkpoint, the final dir, the plot) or stop.
class TrainingRun {
 public:
  TrainingRun(const Recipe& recipe, const RunConfig& config, const RecipeHooks& hooks, ProcessGroup& group)
      : recipe_(recipe), config_(config), hooks_(hooks), group_(group), run_dir_(config.output_dir),
        lead_(group.rank() == 0) {}

  // False when a stop was asked for during setup (which then writes
  // nothing); the stages in between are the points where it is noticed.
  bool setup(const LaunchOptions& launch) {
    // Rank 0 sets up first: it builds what the processes share (the token
    // caches, DPO's precomputed reference) and opens the run dir; the others
    // then find all of it in place and reuse it.
    if (!lead_) group_.wait_for_rank0("setup");
    find_checkpoint(launch);
    if (config_.threads > 0) at::set_num_threads(static_cast<int>(config_.threads));
    device_ = pick_device(config_.device);
    dtype_ = config_.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
    setup_data();
    if (StopRequest::signal()) return false;
    setup_model();
    if (StopRequest::signal()) return false;
    setup_plan();
    if (StopRequest::signal()) return false;
    if (lead_) {
      open_run_dir(launch);
      group_.announce("setup");
    }
    return true;
  }

  bool finished() const { return position_.step >= total_steps_; }
  /// The signal that stopped the run on some process (every process stops
  /// at the same step), or 0.
  int stop_signal() const { return stop_signal_; }

  void train() {
    const auto start = Clock::now();
    while (position_.step < total_steps_) {
      // One process stops at once; several agree after each step (step()).
      if (group_.world_size() == 1) stop_signal_ = StopRequest::signal();
      if (stop_signal_) break;
      step(start);
      const bool more = position_.step < total_steps_;
      if (config_.eval_every > 0 && position_.step % config_.eval_every == 0 && more) evaluate_now();
      if (config_.checkpoint_every > 0 && position_.step % config_.checkpoint_every == 0 && more) checkpoint();
    }
    line_break();
  }

  RunOutcome cleanup() {
    // A resumed run that had nothing left to train was evaluated at this
    // step already (its record is in metrics.jsonl).
    if (steps_this_run_ > 0 || last_checkpoint_step_ != position_.step) evaluate_now();
    checkpoint();
    std::string final_dir = (fs::path(run_dir_) / "final").string();
    if (sharded_) sharded_->gather_all_to_host(lead_);  // every process takes part; rank 0 writes
    if (lead_) {
      final_dir = write_final_dir();
      if (config_.plot) write_plot(run_dir_, metrics_->records(), hooks_);
      std::printf("final model: %s\n", final_dir.c_str());
    }
    // No process ends before rank 0 has written the final dir: a failure
    // there fails every process.
    group_.barrier();
    return {final_dir, 0};
  }

  // After SIGINT/SIGTERM: what a resume needs (the checkpoint at this
  // step), the metrics (flushed per line already) and the plot.
  RunOutcome stop(int signal) {
    line_break();
    if (position_.step == 0) {
      std::printf("stopped by %s before the first optimizer step: nothing to resume\n",
                  StopRequest::signal_name(signal));
    } else {
      checkpoint();
      if (config_.plot && lead_) write_plot(run_dir_, metrics_->records(), hooks_);
      group_.barrier();
      std::printf("stopped by %s at step %lld of %lld; continue with --resume\n", StopRequest::signal_name(signal),
                  static_cast<long long>(position_.step), static_cast<long long>(total_steps_));
    }
    return {"", signal};
  }

 private:
  void line_break() {
    if (progress_) progress_->line_break();
  }

  // The checkpoint to resume from and the settings it must share with this
  // recipe; every refusal happens before anything is written.
  void find_checkpoint(const LaunchOptions& launch) {
    const std::string latest = latest_checkpoint(run_dir_);
    // A checkpoint given by name is also found under its aside name (a kill
    // struck while it was being replaced).
    checkpoint_ = !launch.resume ? "" : launch.resume_from.empty() ? latest : dir_or_aside(launch.resume_from);
    if (launch.resume && !launch.resume_from.empty() && checkpoint_.empty())
      fail("--resume: ", launch.resume_from, " does not exist");
    if (launch.resume && checkpoint_.empty())
      fail("--resume: no checkpoint in ", run_dir_, " (checkpoints are written every checkpointing.every_steps)");
    if (!launch.resume && !latest.empty())
      fail(run_dir_, " already holds checkpoints of a run: continue it with --resume, or set training.output_dir to "
                     "a new dir");
    // What must not change across a resume: the keys flagged kResults
    // except the resumable ones (max_steps, epochs).
    settings_ = recipe_.resume_identity();
    Digest digest;
    digest.field(settings_);
    digest_ = digest.hex();
    if (checkpoint_.empty()) return;
    const TrainerState trainer_state = read_trainer_state(checkpoint_);
    const nlohmann::json& state = trainer_state.fields;
    const int64_t step = trainer_state.position.step;
    // Checkpoints written before the settings were recorded hashed every
    // kResults key, max_steps and epochs included: they resume when those match.
    Digest earlier;
    earlier.field(recipe_.canonical(KeyEffect::kResults));
    const bool earlier_format = !state.contains("recipe_settings") && state.value("recipe_digest", "") == earlier.hex();
    if (state.value("recipe_digest", "") != digest_ && !earlier_format) {
      const std::string changes =
          state.contains("recipe_settings")
              ? changed_keys(state["recipe_settings"].get<std::string>(), settings_)
              : std::string("\n  (unknown: the checkpoint was written by an earlier salamandra-tune, which did not "
                            "record its settings; resume it with the settings it was written with)");
      fail("--resume: ", checkpoint_, " was written by a run with other model/data/training settings; resuming would "
           "not continue it exactly. Changed:", changes, "\nNothing was written. --resume may change only "
           "training.max_steps, training.epochs and the keys that change no result (sft --help).");
    }
    // A global step is grad_accumulation micro-batches on each process.
    const int64_t processes = state.value("processes", int64_t(1));
    if (processes != group_.world_size())
      fail("--resume: ", checkpoint_, " was written by a run of ", processes, " process", processes == 1 ? "" : "es",
           "; resume it with as many (this run has ", group_.world_size(), "), so that each optimizer step takes "
           "the same rows. Nothing was written.");
    auto same = [](const fs::path& a, const fs::path& b) {
      std::error_code ec;  // a path that does not exist is no other one
      return fs::equivalent(a, b, ec);
    };
    const bool in_run_dir = same(fs::absolute(checkpoint_).parent_path(), run_dir_);
    // Resuming from an earlier checkpoint of this run dir abandons the later
    // ones; left in place, a later --resume would take them for this run's.
    if (!in_run_dir && !latest.empty())
      fail("--resume ", checkpoint_, ": ", run_dir_, " holds checkpoints of another run (the newest: ", latest,
           "); set training.output_dir to a new dir. Nothing was written.");
    if (in_run_dir && !latest.empty() && !same(latest, checkpoint_))
      fail("--resume ", checkpoint_, ": ", run_dir_, " holds later checkpoints of the run (the newest: ", latest,
           "). Resuming from step ", step, " would leave them to be mistaken for this run's: move or delete them "
           "first, or set training.output_dir to a new dir and --resume ", checkpoint_, " there. Nothing was written.");
    // The step whose checkpoint exists in the run dir already.
    if (in_run_dir) last_checkpoint_step_ = step;
  }

  // The token caches of the splits and how batches are cut from them.
  void setup_data() {
    encoder_.emplace(datasets::load_encoder(config_.data));
    datasets::PrepareReport report;
    const std::string train_dir =
        datasets::prepare_split(config_.data, *encoder_, config_.data.train_files, "train", &report, {});
    auto kind_name = [](datasets::SampleKind k) {
      return k == datasets::SampleKind::kChat ? "chat data" : "preference pairs";
    };
    if (report.kind != hooks_.kind)
      fail(hooks_.name, " trains on ", kind_name(hooks_.kind), ", but ", config_.data.train_files.front(), " holds ",
           kind_name(report.kind));
    std::printf("train data: %zu samples, %zu tokens, %zu trained (cache %s, %s)\n", report.samples, report.tokens,
                report.trained_tokens, train_dir.c_str(), report.reused ? "reused" : "built");
    for (const std::string& warning :
         datasets::unrendered_warnings(report.unrendered, "train", encoder_->chat_template.origin()))
      std::fprintf(stderr, "%s\n", warning.c_str());
    std::vector<uint32_t> train_members;
    if (config_.data.eval_files.empty() && config_.data.eval_ratio > 0) {
      const datasets::TokenCache cache = datasets::TokenCache::open(train_dir);
      const uint32_t samples = static_cast<uint32_t>(cache.sequences() / cache.sequences_per_sample());
      auto split = datasets::split_train_eval(samples, config_.data.eval_ratio, config_.data.seed);
      train_members = std::move(split.first);
      eval_.emplace(open_split(train_dir, std::move(split.second), hooks_));
      std::printf("eval data: %zu of those samples held out (data.eval_ratio %g); %zu train\n",
                  eval_->members.size(), config_.data.eval_ratio, train_members.size());
    } else if (!config_.data.eval_files.empty()) {
      datasets::PrepareReport eval_report;
      const std::string eval_dir =
          datasets::prepare_split(config_.data, *encoder_, config_.data.eval_files, "eval", &eval_report, {});
      eval_.emplace(open_split(eval_dir, {}, hooks_));
      std::printf("eval data: %zu samples, %zu tokens, %zu trained (cache %s, %s)\n", eval_report.samples,
                  eval_report.tokens, eval_report.trained_tokens, eval_dir.c_str(),
                  eval_report.reused ? "reused" : "built");
    } else {
      std::printf("eval data: none (data.eval and data.eval_ratio are empty)\n");
    }
    train_.emplace(open_split(train_dir, train_members, hooks_));
    // Batches are planned per optimizer step (batching.h): the step of all
    // processes, so that they plan what one process would.
    batching_ = datasets::batch_options(config_.data, static_cast<uint32_t>(config_.micro_batch_rows),
                                        static_cast<uint32_t>(config_.grad_accumulation * group_.world_size()));
    if (train_->row_tokens > 0) batching_.row_tokens = train_->row_tokens;
    if (eval_ && eval_->row_tokens > batching_.row_tokens) batching_.row_tokens = eval_->row_tokens;
    pad_id_ = std::max(0, encoder_->tokenizer.pad_id());
  }

  // The model (from the checkpoint when resuming), the recipe's adaptation
  // of it, what trains, the optimizer and the position.
  void setup_model() {
    // Fully sharded, the whole model is loaded into host memory and only
    // each process's shards go to the device. (A c10d job of one process
    // shards too, into one shard: the GPU check runs the path that way.)
    const bool fsdp = config_.distributed.mode == "fsdp" && group_.collective();
    const at::TensorOptions options = at::TensorOptions().dtype(dtype_).device(fsdp ? at::Device(at::kCPU) : device_);
    // An adapter run's checkpoints hold the adapter only: the base always
    // comes from model.path.
    const bool adapter_run = static_cast<bool>(hooks_.save_adapter);
    model_ = load_model(checkpoint_.empty() || adapter_run ? config_.data.model_dir : checkpoint_, options);
    model_->set_recompute_activations(config_.activation_checkpointing);
    check_sample_prompts();
    if (hooks_.prepare_model) hooks_.prepare_model(*model_);
    if (!checkpoint_.empty()) {
      if (adapter_run) hooks_.load_adapter(checkpoint_, *model_);
      else load_adapter_state(checkpoint_, *model_);
    }
    if (hooks_.before_training)
      hooks_.before_training(*model_,
                             {&train_->cache, eval_ ? &eval_->cache : nullptr, !checkpoint_.empty(), device_});
    model_->require_grads();
    // Masters only for what trains in low precision: fp32 adapters on a
    // bf16 base are updated in place, as fp32 models are.
    bool low_precision_trainable = false;
    for (const auto& [name, tensor] : model_->trainable_parameters())
      low_precision_trainable = low_precision_trainable || tensor.scalar_type() != at::kFloat;
    const bool masters = low_precision_trainable && config_.master_weights;
    // A fresh run's masters start from the source's weights at full
    // precision, not from their rounding to the model's dtype: read again
    // in fp32 (on the CPU) when the source stores anything wider. A source
    // already in the model's dtype (Salamandra's bf16 releases) widens
    // exactly, so it is not read twice; a resumed run restores its masters
    // from the checkpoint.
    NamedTensors initial_masters;
    if (masters && checkpoint_.empty() && !weights_stored_as(config_.data.model_dir, dtype_))
      initial_masters = load_model(config_.data.model_dir, at::TensorOptions().dtype(at::kFloat))->checkpoint_tensors();
    StateShard shard;
    if (fsdp) {
      sharded_.emplace(*model_, group_, device_);
      shard = {group_.rank(), group_.world_size()};
      std::printf("fully sharded (fsdp): each process holds %lld of the model's %lld elements\n",
                  static_cast<long long>(sharded_->shard_elements()),
                  static_cast<long long>(sharded_->whole_elements()));
      NamedTensors shards_of_masters;  // AdamW takes those of its parameters
      for (const auto& [name, whole] : initial_masters)
        shards_of_masters.emplace_back(name, sharded_->shard_of(name, whole));
      optimizer_.emplace(sharded_->trainable_shards(), config_.optimizer, masters, shards_of_masters,
                         sharded_->trainable_decay());
    } else {
      optimizer_.emplace(model_->trainable_parameters(), config_.optimizer, masters, initial_masters);
    }
    if (checkpoint_.empty()) return;
    position_ = load_training_state(checkpoint_, *optimizer_, shard);
    std::printf("resuming from %s at step %lld\n", checkpoint_.c_str(), static_cast<long long>(position_.step));
  }

  // The evaluation's sample prompts must leave room to reply: found out at
  // the first evaluation, a long one would stop the run there.
  void check_sample_prompts() const {
    if (config_.sample_prompts.empty()) return;
    const datasets::SampleEncoder prompts(encoder_->tokenizer, encoder_->chat_template, encoder_->options);
    const int64_t positions = model_->config().max_position_embeddings;
    for (size_t i = 0; i < config_.sample_prompts.size(); ++i) {
      const size_t tokens = prompts.encode_user_prompt(config_.sample_prompts[i]).size();
      if (static_cast<int64_t>(tokens) >= positions)
        fail("logging.sample_prompts[", i, "] (", recipe_.where("logging.sample_prompts"), ") renders to ", tokens,
             " tokens, which leaves no room below the model's max_position_embeddings ", positions);
    }
  }

  // This epoch's plan, the step count and schedule.
  void setup_plan() {
    plan_ = datasets::plan_epoch(train_->lengths, train_->members, batching_, static_cast<uint64_t>(position_.epoch));
    if (plan_.empty()) fail("no training batches: the training split is empty");
    micro_per_epoch_ = static_cast<int64_t>(plan_.size());
    // One optimizer step takes grad_accumulation micro-batches on every
    // process: the rows one process would take with grad_accumulation x
    // processes, in the same order.
    accumulation_ = config_.grad_accumulation * group_.world_size();
    const int64_t steps_per_epoch = (micro_per_epoch_ + accumulation_ - 1) / accumulation_;
    total_steps_ = config_.max_steps > 0 ? config_.max_steps : config_.epochs * steps_per_epoch;
    if (total_steps_ < position_.step)
      fail("--resume: ", checkpoint_, " is at step ", position_.step, " but this recipe trains ", total_steps_,
           " steps (training.max_steps ", config_.max_steps, " from ", recipe_.where("training.max_steps"),
           ", training.epochs ", config_.epochs, "); a run can be extended, not shortened");
    // Extending a finished run continues the schedule as its definition
    // says for the new length (warmup_ratio and the decay are taken of the
    // new total).
    const int64_t warmup =
        config_.warmup_steps > 0
            ? config_.warmup_steps
            : static_cast<int64_t>(std::ceil(config_.warmup_ratio * static_cast<double>(total_steps_)));
    schedule_ = Schedule{config_.schedule, warmup, total_steps_, config_.min_lr_ratio};
    std::printf("%lld optimizer steps (%lld per epoch: %lld micro-batches of %lld rows, accumulation %lld%s)\n",
                static_cast<long long>(total_steps_), static_cast<long long>(steps_per_epoch),
                static_cast<long long>(micro_per_epoch_), static_cast<long long>(config_.micro_batch_rows),
                static_cast<long long>(config_.grad_accumulation),
                group_.world_size() > 1 ? cat(" x ", group_.world_size(), " processes").c_str() : "");
  }

  // Everything checked: the run dir, its resolved recipe and its logs.
  void open_run_dir(const LaunchOptions& launch) {
    fs::create_directories(run_dir_);
    // Writes a kill interrupted: a checkpoint left only under its aside
    // name is renamed back (it was loaded from there, if it was the
    // newest), and staged dirs that were never renamed in are removed.
    recover_dir_entries(run_dir_);
    const std::string resolved = recipe_.resolved_toml();
    const std::string recipe_file = (fs::path(run_dir_) / "recipe.toml").string();
    write_file_atomic(recipe_file, resolved);
    if (launch.print_recipe) std::printf("resolved recipe (%s):\n%s\n", recipe_.source().c_str(), resolved.c_str());
    std::printf("recipe: %s resolved into %s\n", recipe_.source().c_str(), recipe_file.c_str());
    metrics_.emplace(run_dir_, position_.step);
    if (config_.dump_batches) {
      const auto path = fs::path(run_dir_) / "batches.jsonl";
      if (position_.step == 0) write_file_atomic(path.string(), "");
      dump_ = std::make_unique<std::ofstream>(path, std::ios::app);
    }
    progress_.emplace(total_steps_, config_.log_every);
  }

  // One optimizer step over the next micro-batches of the plan, logged.
  void step(Clock::time_point start) {
    if (position_.micro_batch >= micro_per_epoch_) {
      ++position_.epoch;
      position_.micro_batch = 0;
      plan_ = datasets::plan_epoch(train_->lengths, train_->members, batching_, static_cast<uint64_t>(position_.epoch));
    }
    const auto step_start = Clock::now();
    const int64_t first = position_.micro_batch;
    const int64_t last = std::min(micro_per_epoch_, first + accumulation_);
    // This process's share of the step: every world_size-th micro-batch
    // (an epoch's last step may leave a process none).
    std::vector<datasets::Batch> batches;
    std::vector<int64_t> indices;  // in the step, as one process would count them
    std::vector<bool> filler;
    std::map<std::string, double> input_counts;
    int64_t items = 0;
    size_t tokens = 0;
    // Fully sharded, every process runs as many micro-batches (each one's
    // forward and backward gather and scatter with the others): one short of
    // a micro-batch, or holding one without items, runs the step's first
    // micro-batch with items as a filler (weighted 0).
    std::optional<std::pair<int64_t, datasets::Batch>> stand_in;
    if (sharded_)
      for (int64_t m = first; m < last && !stand_in; ++m) {
        datasets::Batch b = datasets::materialize(plan_[static_cast<size_t>(m)], train_->view, batching_, pad_id_);
        if (hooks_.items(b) > 0) stand_in.emplace(m - first, std::move(b));
      }
    const int64_t processes = group_.world_size();
    const int64_t slots = stand_in ? (last - first + processes - 1) / processes : 0;
    for (int64_t k = 0, m = first + group_.rank(); m < last || k < slots; ++k, m += processes) {
      datasets::Batch batch;
      if (m < last) batch = datasets::materialize(plan_[static_cast<size_t>(m)], train_->view, batching_, pad_id_);
      if (stand_in && (m >= last || hooks_.items(batch) == 0)) {
        indices.push_back(stand_in->first);
        batches.push_back(stand_in->second);
        filler.push_back(true);
        continue;
      }
      indices.push_back(m - first);
      items += hooks_.items(batch);
      add_counts(hooks_, batch, input_counts);
      tokens += batch.real_tokens();
      batches.push_back(std::move(batch));
      filler.push_back(false);
    }
    const double lr = config_.optimizer.lr * schedule_.factor(position_.step);
    // Randomness inside the forward (LoRA's dropout) draws from a generator
    // seeded by the step and the micro-batch, so a resumed run repeats it
    // exactly, and a micro-batch draws the same on any process.
    const uint64_t step_seed =
        (static_cast<uint64_t>(config_.data.seed) * 1000003u + static_cast<uint64_t>(position_.step)) * 65537u;
    model_->set_training(true);
    StepInput input;
    input.micro_batches = static_cast<int64_t>(batches.size());
    input.items = items;
    input.counts = std::move(input_counts);
    // Fully sharded, the LM head's gradient goes through autograd into its
    // whole tensor (the sink would need a whole accumulator of its own).
    input.lm_head_weight = sharded_ ? "" : model_->lm_head_weight_name();
    input.overlap = config_.distributed.overlap;
    input.sharded = sharded_ ? &*sharded_ : nullptr;
    input.filler = std::move(filler);
    input.loss = [&](int64_t i, const StepScale& scale) {
      at::manual_seed(step_seed + static_cast<uint64_t>(indices[static_cast<size_t>(i)]));
      return hooks_.loss(*model_, batches[static_cast<size_t>(i)], scale);
    };
    int64_t widest = 0;
    for (const auto& b : batches) widest = std::max(widest, b.cols);
    const StepResult result = guard_allocation(
        cat("step ", position_.step + 1, " (micro-batches of ", config_.micro_batch_rows, " rows x up to ", widest,
            " tokens)"),
        "Lower training.micro_batch_rows (raise training.grad_accumulation to keep the step's size) or "
        "data.max_length, or set model.activation_checkpointing = true.",
        [&] { return optimizer_step(*optimizer_, group_, input, lr, config_.max_grad_norm); });
    model_->set_training(false);
    if (!result.finite) {
      ++position_.nonfinite_steps;
      if (config_.stop_on_nonfinite)
        fail("step ", position_.step + 1, ": the loss (", result.loss, ") or gradient norm (", result.grad_norm,
             ") is not finite; lower optimizer.lr, check the data, or set training.on_nonfinite = \"skip\"");
    }
    position_.micro_batch = last;
    ++position_.step;
    // The step's totals over the processes, and whether a process was asked
    // to stop: all of them stop after the same step.
    const int signal = StopRequest::signal();
    const std::vector<double> totals = group_.sum_values(
        {static_cast<double>(tokens), static_cast<double>(items), signal ? 1.0 : 0.0, static_cast<double>(signal)});
    tokens = static_cast<size_t>(totals[0]);
    items = static_cast<int64_t>(totals[1]);
    if (totals[2] > 0) stop_signal_ = signal ? signal : static_cast<int>(totals[3] / totals[2]);

    const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    tokens_seen_ += static_cast<double>(tokens);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    nlohmann::json record{{"step", position_.step},      {"epoch", position_.epoch},
                          {"loss", result.loss},         {"lr", lr},
                          {"grad_norm", result.grad_norm}, {hooks_.items_name, items},
                          {"tokens", tokens},            {"tokens_per_s", static_cast<double>(tokens) / step_seconds},
                          {"elapsed_s", elapsed},        {"skipped", !result.finite},
                          {"nonfinite_steps", position_.nonfinite_steps}};
    for (const auto& [name, value] : result.metrics) record[name] = value;
    if (const int64_t resident = resident_memory_bytes(); resident >= 0)  // rank 0's
      record["rss_mb"] = static_cast<double>(resident) / (1 << 20);
    if (group_.collective() && !sharded_) {  // rank 0's
      record["all_reduce_s"] = result.all_reduce_s;
      record["buckets_in_backward"] = result.buckets_in_backward;
    }
    ++steps_this_run_;
    if (!lead_) return;
    metrics_->write(record);
    if (dump_) {  // rank 0's micro-batches (all of them in a one-process run)
      nlohmann::json micro = nlohmann::json::array();
      for (size_t i = 0; i < batches.size(); ++i)
        if (input.filler.empty() || !input.filler[i]) micro.push_back(batch_json(batches[i]));
      *dump_ << nlohmann::json{{"step", position_.step}, {"micro_batches", micro}}.dump() << "\n";
      dump_->flush();
    }
    if (progress_) progress_->step(position_.step, position_.epoch, result.loss, lr, tokens_seen_ / elapsed,
                    elapsed / static_cast<double>(steps_this_run_));
  }

  // The eval loss (and sample replies) at this step, logged and printed.
  void evaluate_now() {
    if (!eval_) return;
    const int64_t step = position_.step;
    const Evaluation evaluation = guard_allocation(
        cat("the evaluation at step ", step), "Lower training.micro_batch_rows or data.max_length.",
        [&] {
          return evaluate(*model_, *eval_, batching_, config_.eval_max_batches, hooks_, pad_id_, group_,
                          sharded_.has_value());
        });
    // Fully sharded, every process generates (each token's forward gathers
    // the layers with the others); the same greedy replies, rank 0 records them.
    nlohmann::json samples;
    if (!config_.sample_prompts.empty() && (lead_ || sharded_))
      samples = eval::sample_replies(*model_, *encoder_, config_.sample_prompts, config_.sample_max_new_tokens);
    if (sharded_) sharded_->release_all();
    if (!lead_) return;
    const double loss = evaluation.loss;
    nlohmann::json record{{"step", step}, {"eval_loss", loss}};
    if (hooks_.perplexity) record["eval_ppl"] = std::exp(loss);
    for (const auto& [name, value] : evaluation.metrics) record["eval_" + name] = value;
    if (!config_.sample_prompts.empty()) record["samples"] = std::move(samples);
    metrics_->write(record);
    line_break();
    std::string extra;
    char number[32];
    if (hooks_.perplexity) {
      std::snprintf(number, sizeof number, "%.2f", std::exp(loss));
      extra = cat("  perplexity ", number);
    }
    for (const auto& [metric, title] : hooks_.plot_metrics)
      if (evaluation.metrics.count(metric)) {
        std::snprintf(number, sizeof number, "%.4f", evaluation.metrics.at(metric));
        extra += cat("  ", title, " ", number);
      }
    std::fprintf(stderr, "eval at step %lld: loss %.4f%s\n", static_cast<long long>(step), loss, extra.c_str());
    if (record.contains("samples"))
      for (const auto& s : record["samples"])
        std::fprintf(stderr, "  > %s\n  < %s\n", s["prompt"].get<std::string>().c_str(),
                     s["reply"].get<std::string>().c_str());
  }

  // The checkpoint of this step, unless it exists already (the one resumed
  // from, or one just written before a stop or the end). Rank 0 writes it
  // (the others' next collective waits for it): under ddp every process
  // holds the same weights and optimizer state; fully sharded, every
  // process gathers the weights with the others and writes its own part of
  // the optimizer state into the dir rank 0 staged, before a barrier.
  void checkpoint() {
    if (position_.step == last_checkpoint_step_) return;
    StateShard shard;
    if (sharded_) {
      shard = {group_.rank(), group_.world_size()};
      // The staged dir's name is rank 0's (it carries its process id).
      const std::string staged = group_.all_gather_strings(lead_ ? stage_checkpoint_dir(run_dir_, position_.step)
                                                                 : std::string())[0];
      if (!lead_) write_state_shard(staged, *optimizer_, shard);
      sharded_->gather_all_to_host(lead_);
      group_.barrier();
    }
    if (!lead_) {
      if (sharded_) sharded_->release_all();
      last_checkpoint_step_ = position_.step;
      return;
    }
    std::function<void(const std::string&)> write_adapter;
    if (hooks_.save_adapter) write_adapter = [&](const std::string& dir) { hooks_.save_adapter(*model_, dir); };
    const std::string dir = save_checkpoint(run_dir_, *model_, *optimizer_, position_, dtype_, config_.data.model_dir,
                                            config_.keep_last,
                                            {{"recipe_digest", digest_},
                                             {"recipe_settings", settings_},
                                             {"processes", group_.world_size()}},
                                            write_adapter, shard);
    if (sharded_) sharded_->release_all();
    last_checkpoint_step_ = position_.step;
    line_break();
    std::printf("checkpoint: %s\n", dir.c_str());
  }

  // The final model dir, complete for transformers (or, for adapter
  // training, a PEFT adapter dir with the tokenizer files, as PEFT and TRL
  // save one), written under a temporary name and renamed.
  std::string write_final_dir() {
    const fs::path final_dir = fs::path(run_dir_) / "final";
    const fs::path tmp = staging_path(final_dir.string());
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (hooks_.save_adapter) {
      hooks_.save_adapter(*model_, tmp.string());
    } else {
      SaveOptions save;
      save.dtype = dtype_;
      save_model(*model_, tmp.string(), save);
    }
    copy_model_dir_files(config_.data.model_dir, tmp.string());
    if (!config_.data.chat_template_file.empty())
      write_file_atomic((tmp / "chat_template.jinja").string(), encoder_->chat_template.source());
    write_model_card(tmp.string());
    replace_dir(tmp.string(), final_dir.string());
    return final_dir.string();
  }

  // How the final dir was made (training_record.json), and the README.md
  // model card rendered from it (model/model_card.h).
  void write_model_card(const std::string& dir) const {
    TrainingRecord record;
    record.method = hooks_.name.substr(0, hooks_.name.find(' '));  // "sft (LoRA)": sft, with adapter set
    record.base_model = config_.data.model_dir;
    record.adapter = static_cast<bool>(hooks_.save_adapter);
    record.recipe_file = recipe_.source();
    record.recipe_toml = recipe_.resolved_toml();
    record.data = data_file_records("train", config_.data.train_files);
    for (DataFileRecord& d : data_file_records("eval", config_.data.eval_files)) record.data.push_back(std::move(d));
    // The last step's metrics, then the last evaluation's.
    for (const char* key : {"loss", "eval_loss"})
      for (auto it = metrics_->records().rbegin(); it != metrics_->records().rend(); ++it)
        if (it->contains(key)) {
          for (const auto& [name, value] : it->items())
            if (value.is_number() && name != "elapsed_s" && name != "tokens_per_s" && name != "rss_mb")
              record.final_metrics[name] = value;
          break;
        }
    record.tool = tool_name();
    write_training_record(record, dir);
    ModelCard card;
    card.title = fs::path(run_dir_).filename().string();
    card.library = record.adapter ? "peft" : "transformers";
    card.base_model = record.base_model;
    card.tags = {"salamandra-tune"};
    for (const std::string& tag : record_tags(record)) card.tags.push_back(tag);
    card.summary = cat("Written by ", record.tool, " at the end of a `", hooks_.name, "` run (",
                       record.adapter ? "a PEFT LoRA adapter for the base model" : "the fine-tuned weights",
                       ", with the tokenizer files and chat template it trained with).");
    card.stages.push_back({"Training", record});
    write_file_atomic((fs::path(dir) / "README.md").string(), render_model_card(card));
  }

  const Recipe& recipe_;
  const RunConfig& config_;
  const RecipeHooks& hooks_;
  ProcessGroup& group_;
  const std::string run_dir_;
  const bool lead_;  // rank 0: the one process that writes the run dir and logs
  int stop_signal_ = 0;
  int64_t accumulation_ = 1;  // micro-batches per optimizer step over all processes
  std::string checkpoint_, settings_, digest_;
  int64_t last_checkpoint_step_ = -1;  // the step of the newest checkpoint this run wrote or resumed from
  at::Device device_ = at::kCPU;
  at::ScalarType dtype_ = at::kFloat;
  std::optional<datasets::EncoderBundle> encoder_;
  std::optional<Split> train_, eval_;
  datasets::BatchOptions batching_;
  int32_t pad_id_ = 0;
  std::unique_ptr<LlamaModel> model_;
  std::optional<ShardedModel> sharded_;  // fsdp: the model's shards (after model_: goes first)
  std::optional<AdamW> optimizer_;
  TrainingPosition position_;
  std::vector<datasets::BatchLayout> plan_;
  int64_t micro_per_epoch_ = 0, total_steps_ = 0;
  Schedule schedule_{};
  std::optional<MetricsLog> metrics_;
  std::unique_ptr<std::ofstream> dump_;
  std::optional<Progress> progress_;
  double tokens_seen_ = 0;
  int64_t steps_this_run_ = 0;
};

}  // namespace

RunOutcome run_training(const Recipe& recipe, const RunConfig& config, const RecipeHooks& hooks,
                        const LaunchOptions& launch, ProcessGroup& group) {
  StopRequest stop_request;
  try {
    TrainingRun run(recipe, config, hooks, group);
    if (!run.setup(launch)) {
      const int signal = StopRequest::signal();
      std::printf("stopped by %s during setup: nothing was written to %s\n", StopRequest::signal_name(signal),
                  config.output_dir.c_str());
      group.report_failure(cat("stopped by ", StopRequest::signal_name(signal), " during setup"));
      return {"", signal};
    }
    run.train();
    // A signal after the last step changes nothing: the run finishes.
    if (const int signal = run.stop_signal(); signal && !run.finished()) return run.stop(signal);
    return run.cleanup();
  } catch (const std::exception& e) {
    // The other processes name this one in their error (c10d_group.h).
    group.report_failure(e.what());
    throw;
  }
}

}  // namespace st::train
