// Parameters with roles (model/parameter.h): an extra trainable tensor
// registered by a wrapped projection -- a stand-in for a LoRA adapter -- is
// initialised by its own rule, trained, differentiated through activation
// recomputation, kept out of the Hugging Face dir, and leaves loading a base
// checkpoint into the wrapped model working.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <unistd.h>

#include "model/model_dir.h"
#include "model/safetensors.h"
#include "tests/common/test_model.h"
#include "common/error.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace st {
namespace {

namespace fs = std::filesystem;

// base(x) + (x A^T) B^T with A [rank, in] and B [out, rank]: B starts at zero
// so a fresh probe changes nothing, as LoRA's B does.
class LowRankProbe : public Projection {
 public:
  LowRankProbe(std::shared_ptr<Projection> base, int64_t rank, const at::TensorOptions& options)
      : base_(std::move(base)),
        a_(at::empty({rank, base_->in_features()}, options)),
        b_(at::empty({base_->out_features(), rank}, options)) {}

  at::Tensor forward(const at::Tensor& x) const override {
    at::Tensor y = base_->forward(x);
    return enabled_ ? y + at::matmul(at::matmul(x, a_.t()), b_.t()) : y;
  }
  void describe(const std::string& prefix, int64_t layer, ParameterList& out) const override {
    base_->describe(prefix, layer, out);
    out.push_back({prefix + ".probe_A.weight", a_, TensorRole::kAdapter, true, layer, TensorInit::kNormal});
    out.push_back({prefix + ".probe_B.weight", b_, TensorRole::kAdapter, true, layer, TensorInit::kZeros});
  }
  int64_t in_features() const override { return base_->in_features(); }
  int64_t out_features() const override { return base_->out_features(); }
  at::Tensor dense_weight() const override { return base_->dense_weight(); }
  void set_adapters_enabled(bool enabled) override { enabled_ = enabled; }

  const at::Tensor& a() const { return a_; }
  const at::Tensor& b() const { return b_; }

 private:
  std::shared_ptr<Projection> base_;
  at::Tensor a_, b_;
  bool enabled_ = true;
};

const char* kWrapped = "model.layers.1.self_attn.q_proj";

struct ProbedModel {
  std::unique_ptr<LlamaModel> model;
  std::shared_ptr<LowRankProbe> probe;
};

// The small test model with layer 1's q_proj wrapped, initialised.
ProbedModel probed_model(at::ScalarType dtype = at::kDouble, uint64_t seed = 5) {
  ProbedModel m;
  m.model = std::make_unique<LlamaModel>(test::small_model_config(61), at::TensorOptions().dtype(dtype));
  std::shared_ptr<Projection>& slot = m.model->projection(kWrapped);
  m.probe = std::make_shared<LowRankProbe>(slot, 3, at::TensorOptions().dtype(dtype));
  slot = m.probe;
  m.model->init_random(seed);
  return m;
}

at::Tensor sample_ids() { return at::randint(0, 61, {2, 9}, at::TensorOptions().dtype(at::kLong)); }

// A scalar of the whole forward pass that depends on every hidden unit.
at::Tensor probe_loss(const LlamaModel& model, const at::Tensor& ids, const at::Tensor& weights) {
  return (model.hidden_states(ids) * weights).sum();
}

TEST(ParameterRoles, DescriptionCarriesRoleLayerAndInit) {
  ProbedModel m = probed_model();
  std::set<std::string> adapters, base;
  for (const ParameterInfo& p : m.model->parameters()) {
    if (p.role == TensorRole::kAdapter) {
      adapters.insert(p.name);
      EXPECT_EQ(p.layer, 1) << p.name;
    }
    if (p.role == TensorRole::kBase) base.insert(p.name);
  }
  EXPECT_EQ(adapters, (std::set<std::string>{std::string(kWrapped) + ".probe_A.weight",
                                             std::string(kWrapped) + ".probe_B.weight"}));
  EXPECT_TRUE(base.count(std::string(kWrapped) + ".weight"));
  // The wrapper reports its base's shape and dense weight.
  const ModelConfig& config = m.model->config();
  EXPECT_EQ(m.probe->in_features(), config.hidden_size);
  EXPECT_EQ(m.probe->out_features(), config.num_attention_heads * config.head_dim);
  EXPECT_TRUE(m.probe->dense_weight().is_same(m.model->parameter(std::string(kWrapped) + ".weight")));
  for (const auto& [name, tensor] : m.model->checkpoint_tensors()) EXPECT_FALSE(adapters.count(name)) << name;
  // Each by its own rule: B zeros, A drawn.
  EXPECT_EQ(m.probe->b().abs().max().item<double>(), 0.0);
  EXPECT_GT(m.probe->a().abs().max().item<double>(), 0.0);
  // Frozen base: only the adapter trains, and only it requires grad.
  m.model->set_base_trainable(false);
  m.model->require_grads();
  std::set<std::string> trainable;
  for (const auto& [name, tensor] : m.model->trainable_parameters()) trainable.insert(name);
  EXPECT_EQ(trainable, adapters);
  for (const auto& [name, tensor] : m.model->checkpoint_tensors()) EXPECT_FALSE(tensor.requires_grad()) << name;
  EXPECT_TRUE(m.probe->a().requires_grad());
}

TEST(ParameterRoles, AdapterGradientSurvivesActivationRecomputation) {
  ProbedModel m = probed_model();
  {
    at::NoGradGuard no_grad;
    m.probe->b().normal_(0.0, 0.05);
  }
  m.model->set_base_trainable(false);
  m.model->require_grads();
  at::manual_seed(3);
  const at::Tensor ids = sample_ids();
  const at::Tensor weights = at::randn({2, 9, m.model->config().hidden_size}, at::kDouble);
  std::vector<at::Tensor> plain, recomputed;
  for (bool recompute : {false, true}) {
    m.model->set_recompute_activations(recompute);
    probe_loss(*m.model, ids, weights).backward();
    auto& out = recompute ? recomputed : plain;
    for (const at::Tensor& t : {m.probe->a(), m.probe->b()}) {
      ASSERT_TRUE(t.grad().defined()) << "recompute=" << recompute;
      out.push_back(t.grad().clone());
      t.mutable_grad() = at::Tensor();
    }
  }
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_GT(plain[i].abs().max().item<double>(), 0.0);
    EXPECT_TRUE(at::allclose(recomputed[i], plain[i], 1e-12, 1e-14)) << "tensor " << i;
  }
}

TEST(ParameterRoles, TrainsTheAdapterAloneAndSavesOnlyTheBase) {
  const fs::path dir = fs::temp_directory_path() / ("st-parameter-roles-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ProbedModel m = probed_model(at::kFloat);  // fp32: what save_model stores exactly
  m.model->set_base_trainable(false);
  m.model->require_grads();
  NamedTensors base_before;
  for (const auto& [name, tensor] : m.model->checkpoint_tensors()) base_before.emplace_back(name, tensor.clone());

  train::AdamW optimizer(m.model->trainable_parameters(), {.lr = 1e-2}, /*master_weights=*/false);
  at::manual_seed(4);
  const at::Tensor ids = sample_ids();
  const at::Tensor weights = at::randn({2, 9, m.model->config().hidden_size}, at::kFloat);
  m.model->set_recompute_activations(true);
  double first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    at::Tensor loss = probe_loss(*m.model, ids, weights);
    (step == 0 ? first : last) = loss.item<double>();
    loss.backward();
    optimizer.accumulate_gradients();
    optimizer.step(1e-2);
    optimizer.zero_gradients();
  }
  EXPECT_LT(last, first);
  EXPECT_GT(m.probe->b().abs().max().item<double>(), 0.0);  // B moved off zero
  const NamedTensors base_after = m.model->checkpoint_tensors();
  ASSERT_EQ(base_after.size(), base_before.size());
  for (size_t i = 0; i < base_after.size(); ++i)
    EXPECT_TRUE(at::equal(base_after[i].second, base_before[i].second)) << base_after[i].first;

  // The HF dir holds exactly the base tensors.
  SaveOptions save;
  save.dtype = at::kFloat;
  save_model(*m.model, dir.string(), save);
  std::set<std::string> stored, expected;
  const safetensors::File file((dir / "model.safetensors").string());
  for (const auto& info : file.tensors()) stored.insert(info.name);
  for (const auto& [name, tensor] : base_before) expected.insert(name);
  EXPECT_EQ(stored, expected);

  // A base checkpoint loads into a plain model and into the wrapped one.
  EXPECT_NO_THROW(load_model(dir.string(), at::TensorOptions().dtype(at::kFloat)));
  ProbedModel other = probed_model(at::kFloat, /*seed=*/6);  // other values everywhere
  const at::Tensor a = other.probe->a().clone();
  const std::string wrapped_weight = std::string(kWrapped) + ".weight";
  ASSERT_FALSE(at::equal(other.model->parameter(wrapped_weight), m.model->parameter(wrapped_weight)));
  load_weights(dir.string(), *other.model);
  EXPECT_TRUE(at::equal(other.probe->a(), a));  // adapters are not the checkpoint's
  for (const auto& [name, tensor] : other.model->checkpoint_tensors())
    EXPECT_TRUE(at::equal(tensor, m.model->parameter(name))) << name;

  // Adapters off: the base model's output exactly.
  at::NoGradGuard no_grad;
  auto plain = load_model(dir.string(), at::TensorOptions().dtype(at::kFloat));
  m.model->set_adapters_enabled(false);
  EXPECT_TRUE(at::equal(m.model->hidden_states(ids), plain->hidden_states(ids)));
  m.model->set_adapters_enabled(true);
  EXPECT_FALSE(at::equal(m.model->hidden_states(ids), plain->hidden_states(ids)));
  fs::remove_all(dir);
}

// A training checkpoint keeps the adapters beside (never inside) the HF
// weights, and a resumed run gets them back exactly.
TEST(ParameterRoles, CheckpointsKeepAdaptersOutsideTheHfWeights) {
  const fs::path run = fs::temp_directory_path() / ("st-parameter-roles-run-" + std::to_string(::getpid()));
  fs::remove_all(run);
  const fs::path tokenizer = run / "tokenizer";
  fs::create_directories(tokenizer);
  { std::ofstream(tokenizer / "tokenizer.model") << "stand-in: save_checkpoint only copies it"; }
  ProbedModel m = probed_model(at::kFloat);
  {
    at::NoGradGuard no_grad;  // as if trained: both off their initial values
    m.probe->a().normal_(0.0, 0.05);
    m.probe->b().normal_(0.0, 0.05);
  }
  m.model->set_base_trainable(false);
  m.model->require_grads();
  train::AdamW optimizer(m.model->trainable_parameters(), {.lr = 1e-2}, /*master_weights=*/false);
  const std::string dir =
      train::save_checkpoint(run.string(), *m.model, optimizer, {.step = 3}, at::kFloat, tokenizer.string(), 0, {});
  const safetensors::File weights((fs::path(dir) / "model.safetensors").string());
  for (const auto& info : weights.tensors()) EXPECT_EQ(info.name.find("probe_"), std::string::npos) << info.name;

  ProbedModel resumed = probed_model(at::kFloat);
  load_weights(dir, *resumed.model);
  EXPECT_FALSE(at::equal(resumed.probe->a(), m.probe->a()));
  EXPECT_FALSE(at::equal(resumed.probe->b(), m.probe->b()));
  train::load_adapter_state(dir, *resumed.model);
  EXPECT_TRUE(at::equal(resumed.probe->a(), m.probe->a()));
  EXPECT_TRUE(at::equal(resumed.probe->b(), m.probe->b()));
  // A model without those adapters is told so, by file and tensor.
  auto plain = load_model(dir, at::TensorOptions().dtype(at::kFloat));
  try {
    train::load_adapter_state(dir, *plain);
    ADD_FAILURE() << "adapters of another model must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe_"), std::string::npos) << e.what();
  }
  fs::remove_all(run);
}

}  // namespace
}  // namespace st
