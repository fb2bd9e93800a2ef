#include "sft/sft_run.h"

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

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "datasets/prepare.h"
#include "model/generation.h"
#include "model/model_dir.h"
#include "sft/sft_loss.h"
#include "train/checkpoint.h"
#include "train/metrics_log.h"
#include "train/plot.h"
#include "train/step.h"

namespace fs = std::filesystem;

namespace st::sft {
namespace {

using Clock = std::chrono::steady_clock;

at::Device pick_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  const bool cuda = at::hasCUDA();
  if (name == "cuda" && !cuda) fail("model.device = \"cuda\" but no CUDA device is available");
  return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

// A split as the loop sees it: the cache, which of its sequences belong to
// the split, and the view batches are materialised through.
struct Split {
  data::TokenCache cache;
  std::vector<uint32_t> lengths;
  std::vector<uint32_t> members;
  data::SequenceView view;  // built once: materialising a batch uses it per sequence
};

Split open_split(const std::string& dir, std::vector<uint32_t> members) {
  Split s{data::TokenCache::open(dir), {}, std::move(members)};
  s.lengths = s.cache.lengths();
  s.view = s.cache.view();
  if (s.members.empty())
    for (uint32_t i = 0; i < s.lengths.size(); ++i) s.members.push_back(i);
  return s;
}

nlohmann::json batch_json(const data::Batch& b) {
  return {{"rows", b.rows}, {"cols", b.cols},         {"ids", b.ids},
          {"position_ids", b.position_ids}, {"document", b.document}, {"loss_mask", b.loss_mask}};
}

// Mean NLL per trained token over the eval split (at most max_batches).
double evaluate(const LlamaModel& model, const Split& split, const data::BatchOptions& options, int64_t max_batches,
                int64_t chunk, const at::Device& device, int32_t pad_id) {
  at::NoGradGuard no_grad;
  const auto plan = data::plan_epoch(split.lengths, split.members, options, 0);
  double sum = 0;
  int64_t count = 0, batches = 0;
  for (const auto& layout : plan) {
    if (max_batches > 0 && batches++ >= max_batches) break;
    const BatchTensors t = to_tensors(data::materialize(layout, split.view, options, pad_id), device);
    if (t.trained == 0) continue;
    sum += summed_nll(model, t, chunk).item<double>();
    count += t.trained;
  }
  return count ? sum / static_cast<double>(count) : std::nan("");
}

nlohmann::json sample_replies(const LlamaModel& model, const data::EncoderBundle& encoder,
                              const std::vector<std::string>& prompts, int64_t max_new_tokens) {
  nlohmann::json out = nlohmann::json::array();
  GenerationSettings settings;
  settings.max_new_tokens = max_new_tokens;
  settings.stop_ids = encoder.tokenizer.end_of_turn_ids();
  const data::SampleEncoder prompts_encoder(encoder.tokenizer, encoder.chat_template, encoder.options);
  at::NoGradGuard no_grad;
  for (const std::string& prompt : prompts) {
    data::Json messages = data::Json::array({data::Json{{"role", "user"}, {"content", prompt}}});
    const std::vector<int32_t> ids = prompts_encoder.encode_prompt(messages, nullptr);
    const std::vector<int64_t> reply = generate(model, std::vector<int64_t>(ids.begin(), ids.end()), settings);
    std::vector<int32_t> reply32(reply.begin(), reply.end());
    out.push_back({{"prompt", prompt}, {"reply", encoder.tokenizer.decode(reply32, true)}});
  }
  return out;
}

void write_plot(const std::string& run_dir, const std::vector<nlohmann::json>& records) {
  std::vector<PlotPoint> loss, eval, lr;
  for (const auto& r : records) {
    const double step = r.value("step", 0.0);
    if (r.contains("loss")) loss.push_back({step, r["loss"].get<double>()});
    if (r.contains("lr")) lr.push_back({step, r["lr"].get<double>()});
    if (r.contains("eval_loss")) eval.push_back({step, r["eval_loss"].get<double>()});
  }
  write_training_plot((fs::path(run_dir) / "training.svg").string(), loss, eval, lr, "salamandra-tune sft");
}

}  // namespace

std::string run_sft(const Recipe& recipe, const SftConfig& config, const ResumeRequest& resume) {
  const std::string run_dir = config.output_dir;
  fs::create_directories(run_dir);
  std::string checkpoint = resume.resume ? (resume.from.empty() ? train::latest_checkpoint(run_dir) : resume.from) : "";
  if (resume.resume && checkpoint.empty())
    fail("--resume: no checkpoint in ", run_dir, " (checkpoints are written every checkpointing.every_steps)");
  if (!resume.resume && !train::latest_checkpoint(run_dir).empty())
    fail(run_dir, " already holds checkpoints of a run: continue it with --resume, or set training.output_dir to a "
                  "new dir");
  const std::string resolved = recipe.resolved_toml();
  std::printf("resolved recipe (%s):\n%s\n", recipe.source().c_str(), resolved.c_str());
  write_file_atomic((fs::path(run_dir) / "recipe.toml").string(), resolved);
  // What must not change across a resume: what decides the numbers (not
  // where files go, threads, logging or checkpointing).
  Digest recipe_digest;
  recipe_digest.field(recipe.canonical(
      {"model", "data.train", "data.eval", "data.eval_ratio", "data.format", "data.fields", "data.role_aliases",
       "data.skip_invalid", "data.chat_template", "data.template_vars", "data.train_on", "data.max_length",
       "data.truncation", "data.packing", "data.bucket_window", "data.seed", "training.epochs", "training.max_steps",
       "training.micro_batch_rows", "training.grad_accumulation", "training.max_grad_norm", "training.on_nonfinite",
       "training.lm_head_chunk", "optimizer", "schedule"}));

  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  const at::Device device = pick_device(config.device);
  const at::ScalarType dtype = config.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;

  // ---- data
  const data::EncoderBundle encoder = data::load_encoder(config.data);
  data::PrepareReport report;
  const std::string train_dir = data::prepare_split(config.data, encoder, config.data.train_files, "train", &report,
                                                    {});
  if (report.kind != data::SampleKind::kChat)
    fail("sft trains on chat data, but ", config.data.train_files.front(), " holds preference pairs");
  std::printf("train data: %zu samples, %zu tokens, %zu trained (cache %s, %s)\n", report.samples, report.tokens,
              report.trained_tokens, train_dir.c_str(), report.reused ? "reused" : "built");
  std::vector<uint32_t> train_members, eval_members;
  std::optional<Split> eval;
  if (config.data.eval_files.empty() && config.data.eval_ratio > 0) {
    auto split = data::split_train_eval(static_cast<uint32_t>(data::TokenCache::open(train_dir).sequences()),
                                        config.data.eval_ratio, config.data.seed);
    train_members = std::move(split.first);
    eval_members = std::move(split.second);
    eval.emplace(open_split(train_dir, eval_members));
  } else if (!config.data.eval_files.empty()) {
    eval.emplace(open_split(data::prepare_split(config.data, encoder, config.data.eval_files, "eval", nullptr, {}),
                            {}));
  }
  const Split train_split = open_split(train_dir, train_members);
  const data::BatchOptions batching = data::batch_options(config.data, static_cast<uint32_t>(config.micro_batch_rows),
                                                          static_cast<uint32_t>(config.grad_accumulation));
  const int32_t pad_id = std::max(0, encoder.tokenizer.pad_id());

  // ---- model and optimizer
  const at::TensorOptions options = at::TensorOptions().dtype(dtype).device(device);
  std::unique_ptr<LlamaModel> model = load_model(checkpoint.empty() ? config.data.model_dir : checkpoint, options);
  model->set_activation_checkpointing(config.activation_checkpointing);
  for (auto& [name, p] : model->named_parameters()) p.requires_grad_(true);
  train::AdamW optimizer(model->named_parameters(), config.optimizer, /*master_weights=*/dtype != at::kFloat && config.master_weights);
  train::TrainingPosition position;
  if (!checkpoint.empty()) {
    nlohmann::json extra;
    position = train::load_training_state(checkpoint, optimizer, &extra);
    if (extra.value("recipe_digest", "") != recipe_digest.hex())
      fail("--resume: ", checkpoint, " was written by a run with other model/data/training settings; resuming "
           "would not continue it exactly (compare ", run_dir, "/recipe.toml)");
    std::printf("resuming from %s at step %lld\n", checkpoint.c_str(), static_cast<long long>(position.step));
  }

  // ---- the plan
  std::vector<data::BatchLayout> plan = data::plan_epoch(train_split.lengths, train_split.members, batching,
                                                         static_cast<uint64_t>(position.epoch));
  if (plan.empty()) fail("no training batches: the training split is empty");
  const int64_t micro_per_epoch = static_cast<int64_t>(plan.size());
  const int64_t steps_per_epoch = (micro_per_epoch + config.grad_accumulation - 1) / config.grad_accumulation;
  const int64_t total_steps = config.max_steps > 0 ? config.max_steps : config.epochs * steps_per_epoch;
  train::Schedule schedule{config.schedule,
                           config.warmup_steps > 0 ? config.warmup_steps
                                                   : static_cast<int64_t>(std::ceil(config.warmup_ratio *
                                                                                    static_cast<double>(total_steps))),
                           total_steps, config.min_lr_ratio};
  std::printf("%lld optimizer steps (%lld per epoch: %lld micro-batches of %lld rows, accumulation %lld)\n",
              static_cast<long long>(total_steps), static_cast<long long>(steps_per_epoch),
              static_cast<long long>(micro_per_epoch), static_cast<long long>(config.micro_batch_rows),
              static_cast<long long>(config.grad_accumulation));

  train::MetricsLog metrics(run_dir, position.step);
  std::unique_ptr<std::ofstream> dump;
  if (config.dump_batches) {
    const auto path = fs::path(run_dir) / "batches.jsonl";
    if (position.step == 0) write_file_atomic(path.string(), "");
    dump = std::make_unique<std::ofstream>(path, std::ios::app);
  }
  train::Progress progress(total_steps, config.log_every);
  const at::ScalarType weights_dtype = dtype;
  const nlohmann::json extra{{"recipe_digest", recipe_digest.hex()}};
  auto run_eval = [&](int64_t step) {
    if (!eval) return;
    const double loss = evaluate(*model, *eval, batching, config.eval_max_batches, config.lm_head_chunk, device,
                                 pad_id);
    nlohmann::json record{{"step", step}, {"eval_loss", loss}, {"eval_ppl", std::exp(loss)}};
    if (!config.sample_prompts.empty())
      record["samples"] = sample_replies(*model, encoder, config.sample_prompts, config.sample_max_new_tokens);
    metrics.write(record);
    progress.line_break();
    std::fprintf(stderr, "eval at step %lld: loss %.4f  perplexity %.2f\n", static_cast<long long>(step), loss,
                 std::exp(loss));
    if (record.contains("samples"))
      for (const auto& s : record["samples"])
        std::fprintf(stderr, "  > %s\n  < %s\n", s["prompt"].get<std::string>().c_str(),
                     s["reply"].get<std::string>().c_str());
  };

  // ---- the loop
  const auto start = Clock::now();
  double tokens_seen = 0;
  int64_t steps_this_run = 0;
  while (position.step < total_steps) {
    if (position.micro_batch >= micro_per_epoch) {
      ++position.epoch;
      position.micro_batch = 0;
      plan = data::plan_epoch(train_split.lengths, train_split.members, batching,
                              static_cast<uint64_t>(position.epoch));
    }
    const auto step_start = Clock::now();
    const int64_t first = position.micro_batch;
    const int64_t last = std::min(micro_per_epoch, first + config.grad_accumulation);
    std::vector<data::Batch> batches;
    int64_t trained = 0;
    size_t tokens = 0;
    for (int64_t m = first; m < last; ++m) {
      batches.push_back(data::materialize(plan[static_cast<size_t>(m)], train_split.view, batching, pad_id));
      trained += static_cast<int64_t>(batches.back().trained_tokens());
      tokens += batches.back().real_tokens();
    }
    const double lr = config.optimizer.lr * schedule.factor(position.step);
    train::StepInput input;
    input.micro_batches = static_cast<int64_t>(batches.size());
    input.normalizer = trained;
    const WeightGradSink sink = lm_head_sink(*model, optimizer, trained);
    input.summed_loss = [&](int64_t i) {
      const BatchTensors t = to_tensors(batches[static_cast<size_t>(i)], device);
      return t.trained ? summed_nll(*model, t, config.lm_head_chunk, sink) : at::Tensor();
    };
    const train::StepResult result = train::optimizer_step(optimizer, input, lr, config.max_grad_norm);
    const double loss = result.loss, grad_norm = result.grad_norm;
    const bool finite = result.finite;
    if (!finite) {
      ++position.nonfinite_steps;
      if (config.stop_on_nonfinite)
        fail("step ", position.step + 1, ": the loss (", loss, ") or gradient norm (", grad_norm,
             ") is not finite; lower optimizer.lr, check the data, or set training.on_nonfinite = \"skip\"");
    }
    position.micro_batch = last;
    ++position.step;

    const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    tokens_seen += static_cast<double>(tokens);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    metrics.write({{"step", position.step}, {"epoch", position.epoch}, {"loss", loss}, {"lr", lr},
                   {"grad_norm", grad_norm}, {"trained_tokens", trained}, {"tokens", tokens},
                   {"tokens_per_s", static_cast<double>(tokens) / step_seconds}, {"elapsed_s", elapsed},
                   {"skipped", !finite}, {"nonfinite_steps", position.nonfinite_steps}});
    if (dump) {
      nlohmann::json micro = nlohmann::json::array();
      for (const auto& b : batches) micro.push_back(batch_json(b));
      *dump << nlohmann::json{{"step", position.step}, {"micro_batches", micro}}.dump() << "\n";
      dump->flush();
    }
    ++steps_this_run;
    progress.step(position.step, position.epoch, loss, lr, tokens_seen / elapsed,
                  elapsed / static_cast<double>(steps_this_run));
    if (config.eval_every > 0 && position.step % config.eval_every == 0 && position.step < total_steps)
      run_eval(position.step);
    if (config.checkpoint_every > 0 && position.step % config.checkpoint_every == 0 && position.step < total_steps)
      train::save_checkpoint(run_dir, *model, optimizer, position, weights_dtype, config.data.model_dir,
                             config.keep_last, extra);
  }
  progress.line_break();
  run_eval(position.step);
  train::save_checkpoint(run_dir, *model, optimizer, position, weights_dtype, config.data.model_dir, config.keep_last,
                         extra);

  // ---- the final model dir, complete for transformers
  const fs::path final_dir = fs::path(run_dir) / "final";
  const fs::path tmp = fs::path(run_dir) / cat(".final.tmp-", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  SaveOptions save;
  save.dtype = weights_dtype;
  save_model(*model, tmp.string(), save);
  copy_tokenizer_files(config.data.model_dir, tmp.string());
  const fs::path generation = fs::path(config.data.model_dir) / "generation_config.json";
  if (fs::exists(generation)) fs::copy_file(generation, tmp / "generation_config.json", fs::copy_options::overwrite_existing);
  if (!config.data.chat_template_file.empty())
    write_file_atomic((tmp / "chat_template.jinja").string(), encoder.chat_template.source());
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) fail("cannot rename ", tmp.string(), " to ", final_dir.string(), ": ", ec.message());
  if (config.plot) write_plot(run_dir, metrics.records());
  std::printf("final model: %s\n", final_dir.string().c_str());
  return final_dir.string();
}

}  // namespace st::sft
