// LoRA adapters on a model (lora/lora_linear.h, lora/adapter.h,
// lora/lora_config.h) without the reference stack: PEFT's target and
// pattern rules, the projection's forward paths against each other and
// against the formulas, init, merge deltas against the unmerged forward,
// roles and what load/save touch, dropout replayed by recomputation, and
// adapter_config.json refusals. Parity with PEFT itself is
// tests/parity/lora_parity.py.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "lora/adapter.h"
#include "lora/lora_config.h"
#include "lora/lora_linear.h"
#include "model/model_dir.h"
#include "tests/common/expect_error.h"
#include "tests/common/test_model.h"

namespace st::lora {
namespace {

using test::expect_error;
namespace fs = std::filesystem;

LoraConfig names(std::vector<std::string> targets) {
  LoraConfig c;
  c.target_names = std::move(targets);
  return c;
}

TEST(LoraConfig, TargetsAsPeftMatchesThem) {
  const LoraConfig leaf = names({"q_proj", "model.layers.1.mlp.up_proj"});
  EXPECT_TRUE(leaf.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(leaf.targets("model.layers.1.mlp.up_proj"));
  EXPECT_FALSE(leaf.targets("model.layers.0.mlp.up_proj"));
  EXPECT_FALSE(leaf.targets("model.layers.0.self_attn.xq_proj"));  // a suffix only at a dot
  const LoraConfig all = names({"all-linear"});
  EXPECT_TRUE(all.targets("model.layers.3.mlp.down_proj"));
  EXPECT_FALSE(all.targets("lm_head"));
  LoraConfig regex;
  regex.target_regex = R"(.*\.(0|2)\.mlp\.(gate|up)_proj)";
  EXPECT_TRUE(regex.targets("model.layers.2.mlp.gate_proj"));
  EXPECT_FALSE(regex.targets("model.layers.1.mlp.gate_proj"));
  EXPECT_FALSE(regex.targets("model.layers.12.mlp.gate_proj"));  // fullmatch, not search
}

TEST(LoraConfig, PatternsAndScales) {
  LoraConfig c = names({"all-linear"});
  c.rank = 8;
  c.alpha = 16;
  c.rank_pattern = {{"v_proj", 2}, {R"(layers\.1\.self_attn\.q_proj)", 6}, {"q_proj", 4}};
  c.alpha_pattern = {{"up_proj", 3}};
  EXPECT_EQ(c.shape_of("model.layers.0.self_attn.v_proj").rank, 2);
  EXPECT_EQ(c.shape_of("model.layers.1.self_attn.q_proj").rank, 6);  // the first matching pattern wins
  EXPECT_EQ(c.shape_of("model.layers.0.self_attn.q_proj").rank, 4);
  EXPECT_EQ(c.shape_of("model.layers.0.self_attn.k_proj").rank, 8);
  EXPECT_DOUBLE_EQ(c.shape_of("model.layers.0.mlp.up_proj").scale, 3.0 / 8);
  EXPECT_DOUBLE_EQ(c.shape_of("model.layers.0.self_attn.v_proj").scale, 16.0 / 2);
  c.rslora = true;
  EXPECT_DOUBLE_EQ(c.shape_of("model.layers.0.self_attn.v_proj").scale, 16.0 / std::sqrt(2.0));
  EXPECT_FALSE(c.shape_of("model.layers.0.self_attn.xv_proj").rank == 2);  // "(.*\.)?(P)$": at a dot
}

TEST(LoraConfig, PeftJsonRoundTripsAndRefusesWhatItCannotApply) {
  LoraConfig c = names({"q_proj", "v_proj"});
  c.rank = 6;
  c.alpha = 12;
  c.dora = true;
  c.rank_pattern = {{"v_proj", 2}};
  const LoraConfig back = LoraConfig::from_peft_json(c.to_peft_json(), "x.json");
  EXPECT_EQ(back.rank, 6);
  EXPECT_EQ(back.alpha, 12);
  EXPECT_TRUE(back.dora);
  EXPECT_EQ(back.target_names, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(back.rank_pattern, c.rank_pattern);
  auto refused = [&](const char* key, nlohmann::ordered_json value, std::initializer_list<std::string> parts) {
    nlohmann::ordered_json j = c.to_peft_json();
    j[key] = value;
    expect_error([&] { LoraConfig::from_peft_json(j, "cfg.json"); }, parts);
  };
  refused("r", 0, {"cfg.json", "positive"});
  refused("peft_type", "IA3", {"cfg.json", "IA3"});
  refused("modules_to_save", {"lm_head"}, {"modules_to_save", "not supported"});
  refused("bias", "all", {"bias"});
  refused("init_lora_weights", "pissa", {"init_lora_weights", "rewrites the base"});
  refused("layers_to_transform", {0}, {"layers_to_transform"});
  refused("target_modules", "(unclosed", {"not a regular expression"});
  nlohmann::ordered_json no_targets = c.to_peft_json();
  no_targets["target_modules"] = nullptr;  // PEFT's default for Llama
  EXPECT_EQ(LoraConfig::from_peft_json(no_targets, "x").target_names, (std::vector<std::string>{"q_proj", "v_proj"}));
}

// A dense projection with random weights (and bias) wrapped with random A, B.
struct Wrapped {
  std::shared_ptr<DenseProjection> base;
  std::shared_ptr<LoraLinear> lora;
};

Wrapped make_wrapped(bool dora, double dropout, bool bias, uint64_t seed) {
  at::manual_seed(static_cast<int64_t>(seed));
  auto base = std::make_shared<DenseProjection>(at::randn({7, 5}, at::kDouble),
                                                bias ? at::randn({7}, at::kDouble) : at::Tensor());
  ModuleShape shape{3, 6, 2.0};
  auto lora = std::make_shared<LoraLinear>(base, shape, dropout, dora, at::TensorOptions().dtype(at::kDouble));
  lora->lora_a().copy_(at::randn({3, 5}, at::kDouble));
  lora->lora_b().copy_(at::randn({7, 3}, at::kDouble));
  if (dora) lora->magnitude().copy_(at::rand({7}, at::kDouble) + 0.5);
  return {base, lora};
}

TEST(LoraLinear, ForwardIsThePeftFormula) {
  for (bool bias : {false, true}) {
    for (bool dora : {false, true}) {
      Wrapped w = make_wrapped(dora, 0.0, bias, 1);
      const at::Tensor x = at::randn({2, 4, 5}, at::kDouble);
      const at::Tensor W = w.base->weight(), A = w.lora->lora_a(), B = w.lora->lora_b();
      const at::Tensor base_out = at::linear(x, W, bias ? std::optional<at::Tensor>(w.base->bias()) : std::nullopt);
      at::Tensor expected = base_out + 2.0 * at::linear(at::linear(x, A), B);
      if (dora) {
        const at::Tensor norm = at::linalg_vector_norm(W + 2.0 * at::mm(B, A), 2, {1});
        const at::Tensor s = w.lora->magnitude() / norm;
        expected = base_out + (s - 1) * at::linear(x, W) + s * 2.0 * at::linear(at::linear(x, A), B);
      }
      EXPECT_TRUE(at::allclose(w.lora->forward(x), expected, 1e-12, 1e-12)) << "bias " << bias << " dora " << dora;
      // Merged: W + delta gives the same outputs.
      const at::Tensor merged = at::linear(x, W + w.lora->delta_weight().to(at::kDouble),
                                           bias ? std::optional<at::Tensor>(w.base->bias()) : std::nullopt);
      EXPECT_TRUE(at::allclose(merged, expected, 1e-4, 1e-4)) << "merged, dora " << dora;  // delta is fp32
      w.lora->set_adapters_enabled(false);
      EXPECT_TRUE(at::equal(w.lora->forward(x), base_out));
    }
  }
}

TEST(LoraLinear, StackedAdaptersAtWeightsAreTheWeightedMerge) {
  // merge's self-check: a DoRA adapter wrapping a LoRA one, at weights 0.7
  // and -0.4, computes W + 0.7 dW1 - 0.4 dW2 (DoRA's delta of the base W).
  Wrapped first = make_wrapped(false, 0.0, true, 3);
  auto second = std::make_shared<LoraLinear>(first.lora, ModuleShape{2, 3, 1.5}, 0.0, /*dora=*/true,
                                             at::TensorOptions().dtype(at::kDouble));
  second->lora_a().copy_(at::randn({2, 5}, at::kDouble));
  second->lora_b().copy_(at::randn({7, 2}, at::kDouble));
  second->magnitude().copy_(at::rand({7}, at::kDouble) + 0.5);
  first.lora->set_combination_weight(0.7);
  second->set_combination_weight(-0.4);
  const at::Tensor W = first.base->weight().to(at::kFloat);
  const at::Tensor merged =
      W + 0.7 * adapter_delta(W, first.lora->lora_a(), first.lora->lora_b(), at::Tensor(), 2.0) -
      0.4 * adapter_delta(W, second->lora_a(), second->lora_b(), second->magnitude(), 1.5);
  const at::Tensor x = at::randn({3, 5}, at::kDouble);
  EXPECT_TRUE(at::allclose(second->forward(x), at::linear(x, merged.to(at::kDouble), first.base->bias()), 1e-4, 1e-4));
}

TEST(LoraLinear, DropoutActsWhileTrainingOnlyAndOnTheAdapterInput) {
  for (bool dora : {false, true}) {
    Wrapped w = make_wrapped(dora, 0.5, true, 2);
    const at::Tensor x = at::randn({3, 5}, at::kDouble);
    const at::Tensor inference = w.lora->forward(x);
    w.lora->set_training(true);
    at::manual_seed(5);
    const at::Tensor trained = w.lora->forward(x);
    EXPECT_FALSE(at::allclose(trained, inference));
    // The same draw by hand: PEFT's formula with drop(x).
    at::manual_seed(5);
    const at::Tensor xd = at::dropout(x, 0.5, true);
    const at::Tensor W = w.base->weight(), A = w.lora->lora_a(), B = w.lora->lora_b();
    const at::Tensor base_out = at::linear(x, W, w.base->bias());
    at::Tensor expected = base_out + 2.0 * at::linear(at::linear(xd, A), B);
    if (dora) {
      const at::Tensor s = w.lora->magnitude() / at::linalg_vector_norm(W + 2.0 * at::mm(B, A), 2, {1});
      expected = base_out + (s - 1) * at::linear(xd, W) + s * 2.0 * at::linear(at::linear(xd, A), B);
    }
    EXPECT_TRUE(at::allclose(trained, expected, 1e-12, 1e-12)) << "dora " << dora;
  }
}

TEST(LoraLinear, InitIsPeftsDefault) {
  auto base = std::make_shared<DenseProjection>(at::randn({40, 64}), at::Tensor());
  LoraLinear lora(base, {8, 16, 2.0}, 0.0, /*dora=*/true, at::TensorOptions());
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
  lora.init(LoraInit::kDefault, generator);
  EXPECT_TRUE(at::equal(lora.lora_b(), at::zeros_like(lora.lora_b())));
  EXPECT_LE(lora.lora_a().abs().max().item<double>(), 1.0 / 8.0);  // 1 / sqrt(64)
  EXPECT_GT(lora.lora_a().abs().max().item<double>(), 0.9 / 8.0);
  EXPECT_TRUE(at::allclose(lora.magnitude(), at::linalg_vector_norm(base->weight(), 2, {1})));
  lora.init(LoraInit::kGaussian, generator);
  EXPECT_NEAR(lora.lora_a().std().item<double>(), 1.0 / 8, 0.02);
}

class AdaptedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model = std::make_unique<LlamaModel>(test::small_model_config(64), at::TensorOptions());
    model->init_random(1);
    config = names({"q_proj", "down_proj"});
    config.rank = 4;
    config.alpha = 8;
    config.dora = true;
    config.rank_pattern = {{"down_proj", 2}};
  }
  std::unique_ptr<LlamaModel> model;
  LoraConfig config;
};

TEST_F(AdaptedModel, AdaptersHaveRolesAndTheBaseFreezes) {
  const NamedTensors base_before = model->checkpoint_tensors();
  const auto modules = attach_adapters(*model, config, at::TensorOptions(), "test");
  ASSERT_EQ(modules.size(), 4u);  // q_proj and down_proj of two layers
  EXPECT_EQ(modules[0].key, "model.layers.0.self_attn.q_proj");
  int adapters = 0;
  for (const ParameterInfo& p : model->parameters()) {
    if (p.role == TensorRole::kAdapter) {
      ++adapters;
      EXPECT_TRUE(p.trainable) << p.name;
    } else if (p.role == TensorRole::kBase) {
      EXPECT_FALSE(p.trainable) << p.name;
    }
  }
  EXPECT_EQ(adapters, 4 * 3);  // A, B, magnitude
  EXPECT_EQ(model->parameter("model.layers.1.mlp.down_proj.lora_A.weight").size(0), 2);
  // The checkpoint's tensors are the base's, unchanged and under the same names.
  const NamedTensors base_after = model->checkpoint_tensors();
  ASSERT_EQ(base_after.size(), base_before.size());
  for (size_t i = 0; i < base_after.size(); ++i) EXPECT_EQ(base_after[i].first, base_before[i].first);
  expect_error([&] { attach_adapters(*model, config, at::TensorOptions(), "again"); }, {"carries an adapter already"});
  LoraConfig head = names({"lm_head"});
  expect_error([&] { attach_adapters(*model, head, at::TensorOptions(), "cfg"); }, {"LM head", "not supported"});
  LoraConfig none = names({"c_attn"});
  expect_error([&] { attach_adapters(*model, none, at::TensorOptions(), "cfg"); }, {"select no projection"});
}

TEST_F(AdaptedModel, SavedAdapterLoadsBackExactlyAndRefusesAnotherModel) {
  const auto modules = attach_adapters(*model, config, at::TensorOptions(), "test");
  init_adapters(modules, LoraInit::kDefault, 7);
  for (const AdaptedModule& m : modules) m.linear->lora_b().normal_();
  const fs::path dir = fs::temp_directory_path() / "st_lora_adapter_test";
  fs::remove_all(dir);
  save_adapter(*model, config, dir.string());
  const at::Tensor ids = at::randint(0, 64, {2, 9});
  const at::Tensor expected = model->logits(model->hidden_states(ids));

  auto fresh = std::make_unique<LlamaModel>(test::small_model_config(64), at::TensorOptions());
  fresh->init_random(1);
  const LoraConfig read = load_adapter(dir.string(), *fresh);
  EXPECT_EQ(read.rank_pattern, config.rank_pattern);
  EXPECT_TRUE(at::equal(fresh->logits(fresh->hidden_states(ids)), expected));
  fresh->set_adapters_enabled(false);
  EXPECT_FALSE(at::allclose(fresh->logits(fresh->hidden_states(ids)), expected));

  auto other_vocab = std::make_unique<LlamaModel>(test::small_model_config(72), at::TensorOptions());
  expect_error([&] { load_adapter(dir.string(), *other_vocab); }, {"vocabulary of 64 tokens", "72"});
  ModelConfig wider = test::small_model_config(64);
  wider.intermediate_size = 80;
  auto other_shape = std::make_unique<LlamaModel>(wider, at::TensorOptions());
  expect_error([&] { load_adapter(dir.string(), *other_shape); }, {"has shape", "adapter_model.safetensors"});
  fs::remove_all(dir);
}

TEST_F(AdaptedModel, RecomputationReplaysTheDropout) {
  config.dora = false;
  config.dropout = 0.3;
  const auto modules = attach_adapters(*model, config, at::TensorOptions(), "test");
  init_adapters(modules, LoraInit::kDefault, 7);
  for (const AdaptedModule& m : modules) m.linear->lora_b().normal_();
  model->require_grads();
  model->set_training(true);
  const at::Tensor ids = at::randint(0, 64, {2, 9});
  auto gradients = [&](bool recompute) {
    model->set_recompute_activations(recompute);
    at::manual_seed(11);
    model->hidden_states(ids).pow(2).sum().backward();
    std::vector<at::Tensor> grads;
    for (const auto& [name, t] : model->trainable_parameters()) {
      grads.push_back(t.grad().clone());
      t.mutable_grad() = at::Tensor();
    }
    // The generator continues where the forward left it: the replay in
    // backward put its state back.
    return std::make_pair(grads, at::rand({1}).item<double>());
  };
  const auto [stored, after_stored] = gradients(false);
  const auto [recomputed, after_recomputed] = gradients(true);
  for (size_t i = 0; i < stored.size(); ++i) EXPECT_TRUE(at::allclose(stored[i], recomputed[i], 1e-5, 1e-6)) << i;
  EXPECT_EQ(after_stored, after_recomputed);
}

}  // namespace
}  // namespace st::lora
