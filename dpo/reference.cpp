#include "dpo/reference.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "model/model_dir.h"

namespace fs = std::filesystem;

namespace st::dpo {
namespace {

// The summed log-probs of a frozen forward (eval mode: no dropout).
std::pair<at::Tensor, at::Tensor> frozen_logps(const LlamaModel& model, const PairTensors& t, int64_t chunk_rows) {
  at::NoGradGuard no_grad;
  const PairLogps p = pair_logps(model, t, chunk_rows, {}, false);
  return {p.chosen.to(at::kFloat), p.rejected.to(at::kFloat)};
}

class OwnedModel : public Reference {
 public:
  OwnedModel(std::unique_ptr<LlamaModel> model, int64_t chunk_rows) : model_(std::move(model)), chunk_(chunk_rows) {}
  std::pair<at::Tensor, at::Tensor> logps(const datasets::Batch&, const PairTensors& t, bool) override {
    return frozen_logps(*model_, t, chunk_);
  }

 private:
  std::unique_ptr<LlamaModel> model_;
  int64_t chunk_;
};

// The policy's forward in eval mode, adapters switched off or not, with its
// training flag and adapters restored afterwards.
class PolicyForward : public Reference {
 public:
  PolicyForward(LlamaModel& policy, int64_t chunk_rows, bool adapters_off)
      : policy_(policy), chunk_(chunk_rows), adapters_off_(adapters_off) {}
  std::pair<at::Tensor, at::Tensor> logps(const datasets::Batch&, const PairTensors& t, bool evaluation) override {
    // Switching modes changes no tensor: the same weights, used another way.
    const bool training = !evaluation;
    policy_.set_training(false);
    if (adapters_off_) policy_.set_adapters_enabled(false);
    struct Restore {
      PolicyForward* self;
      bool training;
      ~Restore() {
        if (self->adapters_off_) self->policy_.set_adapters_enabled(true);
        self->policy_.set_training(training);
      }
    } restore{this, training};
    return frozen_logps(policy_, t, chunk_);
  }

 private:
  LlamaModel& policy_;
  int64_t chunk_;
  bool adapters_off_;
};

class Cached : public Reference {
 public:
  Cached(std::shared_ptr<const std::vector<float>> train, std::shared_ptr<const std::vector<float>> eval)
      : train_(std::move(train)), eval_(std::move(eval)) {}
  std::pair<at::Tensor, at::Tensor> logps(const datasets::Batch& batch, const PairTensors& t,
                                          bool evaluation) override {
    const std::vector<float>& table = evaluation ? *eval_ : *train_;
    std::vector<float> chosen, rejected;
    for (uint32_t pair : batch.sequences) {
      ST_CHECK(2 * size_t(pair) + 1 < table.size(), "pair ", pair, " beyond the precomputed reference log-probs");
      chosen.push_back(table[2 * size_t(pair)]);
      rejected.push_back(table[2 * size_t(pair) + 1]);
    }
    const at::Device device = t.ids.device();
    return {at::tensor(chosen, at::kFloat).to(device), at::tensor(rejected, at::kFloat).to(device)};
  }

 private:
  std::shared_ptr<const std::vector<float>> train_, eval_;
};

}  // namespace

std::unique_ptr<Reference> model_reference(std::unique_ptr<LlamaModel> model, int64_t chunk_rows) {
  return std::make_unique<OwnedModel>(std::move(model), chunk_rows);
}

std::unique_ptr<Reference> adapters_off_reference(LlamaModel& policy, int64_t chunk_rows) {
  return std::make_unique<PolicyForward>(policy, chunk_rows, true);
}

std::unique_ptr<Reference> frozen_policy_reference(LlamaModel& policy, int64_t chunk_rows) {
  return std::make_unique<PolicyForward>(policy, chunk_rows, false);
}

std::unique_ptr<Reference> cached_reference(std::shared_ptr<const std::vector<float>> train,
                                            std::shared_ptr<const std::vector<float>> eval) {
  return std::make_unique<Cached>(std::move(train), std::move(eval));
}

std::string model_identity(const std::string& dir) {
  Digest digest;
  digest.field("salamandra-tune reference v1");
  digest.field(digest_file((fs::path(dir) / "config.json").string()));
  for (const std::string& file : weight_files(dir).files) digest.field(digest_file(file));
  return digest.hex();
}

std::vector<float> precomputed_logps(const datasets::TokenCache& cache, const std::string& identity,
                                     at::ScalarType dtype, const at::Device& device, int64_t rows,
                                     const std::function<std::unique_ptr<Reference>()>& make_reference) {
  Digest digest;
  digest.field("salamandra-tune reference log-probs v1");
  digest.field(cache.meta().value("key", std::string()));
  digest.field(identity);
  digest.field(c10::toString(dtype));
  const fs::path dir = fs::path(cache.dir()).parent_path() /
                       (fs::path(cache.dir()).filename().string() + ".reference-" + digest.hex().substr(0, 16));
  const fs::path file = dir / "logps.f32";
  const size_t pairs = cache.sequences() / 3;
  if (fs::exists(file)) {
    const std::string bytes = read_file(file.string());
    std::vector<float> table(2 * pairs);
    if (bytes.size() != table.size() * sizeof(float))
      fail(file.string(), " does not hold ", 2 * pairs, " float32 log-probs; delete ", dir.string(),
           " to compute it again");
    std::memcpy(table.data(), bytes.data(), bytes.size());
    std::printf("reference log-probs: %zu pairs from %s (reused)\n", pairs, file.string().c_str());
    return table;
  }
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Reference> reference = make_reference();
  const train::SampleRows sample_rows = pair_rows(cache);
  datasets::BatchOptions options;
  options.mode = datasets::BatchMode::kPadded;
  options.row_tokens = sample_rows.row_tokens;
  std::vector<float> table(2 * pairs);
  for (size_t first = 0; first < pairs; first += size_t(rows)) {
    datasets::BatchLayout layout;
    for (size_t p = first; p < std::min(pairs, first + size_t(rows)); ++p)
      layout.rows.push_back({static_cast<uint32_t>(p)});
    const datasets::Batch batch = datasets::materialize(layout, sample_rows.view, options, 0);
    const PairTensors t = pair_tensors(batch, device);
    const auto [chosen, rejected] = reference->logps(batch, t, true);
    // (chosen, rejected) per pair, as the table holds them: one copy to the CPU.
    const at::Tensor logps = at::stack({chosen, rejected}, 1).to(at::kCPU, at::kFloat).contiguous();
    std::memcpy(table.data() + 2 * first, logps.data_ptr<float>(), static_cast<size_t>(logps.numel()) * sizeof(float));
    std::fprintf(stderr, "\rreference log-probs: %zu / %zu pairs", std::min(pairs, first + size_t(rows)), pairs);
  }
  std::fprintf(stderr, "\n");
  fs::create_directories(dir);
  write_file_atomic(file.string(), std::string_view(reinterpret_cast<const char*>(table.data()),
                                                    table.size() * sizeof(float)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("reference log-probs: %zu pairs computed in %.1f s into %s\n", pairs, seconds, file.string().c_str());
  return table;
}

}  // namespace st::dpo
