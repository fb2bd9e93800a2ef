// Unit tests of the decoder pieces that the parity tests do not isolate:
// config parsing and its errors, the chunked LM head's gradients, activation
// recomputation, the KV cache with a multi-token step, and model-dir IO with
// its bad-input errors.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/lm_head.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "tests/common/test_model.h"

namespace st {
namespace {

namespace fs = std::filesystem;

ModelConfig small_config() { return test::small_model_config(211); }

std::string temp_dir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("st_model_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Config, PresetsMatchPublishedParameterCounts) {
  // Totals published on the Salamandra model cards.
  EXPECT_EQ(ModelConfig::preset("salamandra-2b").num_parameters(), 2253490176);
  EXPECT_EQ(ModelConfig::preset("salamandra-7b").num_parameters(), 7768117248);
  for (const auto& name : ModelConfig::preset_names()) ModelConfig::preset(name).validate(name);
  EXPECT_NE(error_of([] { ModelConfig::preset("salamandra-3b"); }).find("unknown preset"), std::string::npos);
}

TEST(Config, JsonRoundTrip) {
  ModelConfig c = small_config();
  c.rope_linear_factor = 2.0;
  c.rope_theta = 12345;
  ModelConfig back = ModelConfig::from_json(c.to_json(), "test");
  EXPECT_EQ(back.to_json(), c.to_json());
}

TEST(Config, BadInputNamesFileAndKey) {
  const std::string dir = temp_dir("config");
  const std::string path = dir + "/config.json";
  write_file_atomic(path, "{\"model_type\": \"llama\", ");
  std::string e = error_of([&] { ModelConfig::load(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("malformed JSON"), std::string::npos) << e;

  nlohmann::json j = small_config().to_json();
  j.erase("hidden_size");
  e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  EXPECT_NE(e.find("cfg.json: missing required key \"hidden_size\""), std::string::npos) << e;

  j = small_config().to_json();
  j["num_hidden_layers"] = "four";
  e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  EXPECT_NE(e.find("\"num_hidden_layers\" has the wrong type"), std::string::npos) << e;

  j = small_config().to_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  EXPECT_NE(e.find("\"yarn\" is not supported"), std::string::npos) << e;

  j = small_config().to_json();
  j["model_type"] = "mistral";
  e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  EXPECT_NE(e.find("\"model_type\" must be \"llama\""), std::string::npos) << e;

  j = small_config().to_json();
  j["num_key_value_heads"] = 4;  // 6 heads are not a multiple of 4
  e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  EXPECT_NE(e.find("multiple of \"num_key_value_heads\""), std::string::npos) << e;
}

TEST(LmHead, ChunkedLogProbsAndGradientsEqualFullSoftmax) {
  at::manual_seed(0);
  const int64_t rows = 23, hidden = 17, vocab = 101;
  at::Tensor h = at::randn({rows, hidden}, at::kDouble).requires_grad_(true);
  at::Tensor w = at::randn({vocab, hidden}, at::kDouble).requires_grad_(true);
  at::Tensor targets = at::randint(0, vocab, {rows}, at::kLong);
  targets[3] = kIgnoreTarget;
  targets[20] = kIgnoreTarget;
  at::Tensor weights = at::randn({rows}, at::kDouble);

  at::Tensor ours = target_log_probs(h, w, targets, /*chunk_rows=*/5);
  auto ours_grads = torch::autograd::grad({(ours.to(at::kDouble) * weights).sum()}, {h, w});

  at::Tensor valid = targets.ne(kIgnoreTarget);
  // fp64 weights keep the softmax in fp64: the chunked path must equal the
  // full softmax to rounding.
  at::Tensor full = at::log_softmax(at::linear(h, w), -1)
                        .gather(1, targets.clamp_min(0).unsqueeze(1))
                        .squeeze(1) *
                    valid;
  auto ref_grads = torch::autograd::grad({(full.to(at::kDouble) * weights).sum()}, {h, w});
  EXPECT_EQ(ours.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(ours, full, 1e-12, 1e-12));
  EXPECT_EQ(ours[3].item<double>(), 0.0);
  EXPECT_TRUE(at::allclose(ours_grads[0], ref_grads[0], 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(ours_grads[1], ref_grads[1], 1e-12, 1e-12));
  // bf16/fp32 weights: fp32 log-probs.
  EXPECT_EQ(target_log_probs(h.detach().to(at::kFloat), w.detach().to(at::kFloat), targets, 5).scalar_type(),
            at::kFloat);
}

// Sum of target log-probs of a random batch: a scalar to differentiate.
at::Tensor sequence_score(const LlamaModel& model, const at::Tensor& ids) {
  at::Tensor hidden = model.hidden_states(ids);
  const int64_t steps = ids.size(1);
  at::Tensor flat = hidden.narrow(1, 0, steps - 1).reshape({-1, hidden.size(2)});
  return target_log_probs(flat, model.lm_head_weight(), ids.narrow(1, 1, steps - 1).reshape({-1}), 8).sum();
}

TEST(Recomputation, GradientsEqualPlainBackward) {
  LlamaModel model(small_config(), at::TensorOptions().dtype(at::kDouble));
  model.init_random(3);
  std::vector<at::Tensor> params;
  for (auto& [name, t] : model.checkpoint_tensors()) params.push_back(t.requires_grad_(true));
  at::Tensor ids = at::randint(0, 211, {2, 13}, at::kLong);

  auto plain = torch::autograd::grad({sequence_score(model, ids)}, params);
  model.set_recompute_activations(true);
  auto recomputed = torch::autograd::grad({sequence_score(model, ids)}, params);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(at::allclose(plain[i], recomputed[i], 1e-10, 1e-12)) << "parameter " << i;
}

TEST(KVCache, MultiTokenStepsAfterCacheEqualFullForward) {
  at::NoGradGuard no_grad;
  LlamaModel model(small_config(), at::TensorOptions().dtype(at::kDouble));
  model.init_random(4);
  at::Tensor ids = at::randint(0, 211, {2, 19}, at::kLong);
  at::Tensor full = model.hidden_states(ids);
  KVCache cache;
  ForwardOptions options;
  options.cache = &cache;
  std::vector<at::Tensor> parts;
  for (auto [start, len] : {std::pair<int64_t, int64_t>{0, 7}, {7, 1}, {8, 11}})
    parts.push_back(model.hidden_states(ids.narrow(1, start, len), options));
  EXPECT_EQ(cache.length(), 19);
  EXPECT_TRUE(at::allclose(at::cat(parts, 1), full, 1e-10, 1e-12));
}

TEST(ModelDir, SaveLoadRoundTripShardedAndSingle) {
  at::NoGradGuard no_grad;
  LlamaModel model(small_config(), at::TensorOptions().dtype(at::kFloat));
  model.init_random(5);
  for (uint64_t shard : {uint64_t{5} << 30, uint64_t{40000}}) {
    const std::string dir = temp_dir(cat("roundtrip_", shard));
    save_model(model, dir, {at::kFloat, shard});
    EXPECT_EQ(fs::exists(dir + "/model.safetensors.index.json"), shard < 1000000);
    auto loaded = load_model(dir, at::TensorOptions().dtype(at::kFloat));
    auto a = model.checkpoint_tensors(), b = loaded->checkpoint_tensors();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
    }
  }
}

// Rewrites DIR/model.safetensors with `edit` applied to the tensor list.
void rewrite_weights(const std::string& dir,
                     const std::function<void(std::vector<safetensors::TensorToWrite>&)>& edit) {
  const std::string path = dir + "/model.safetensors";
  std::vector<std::vector<char>> buffers;
  std::vector<safetensors::TensorToWrite> tensors;
  {
    safetensors::File file(path);
    for (const auto& t : file.tensors()) {
      buffers.emplace_back(reinterpret_cast<const char*>(t.data), reinterpret_cast<const char*>(t.data) + t.nbytes);
      tensors.push_back({t.name, t.dtype, t.shape, buffers.back().data(), t.nbytes});
    }
  }
  edit(tensors);
  safetensors::write_file(path, tensors, {{"format", "pt"}});
}

TEST(ModelDir, BadInputErrorsNameFileAndTensor) {
  LlamaModel model(small_config(), at::TensorOptions().dtype(at::kFloat));
  model.init_random(6);
  const auto fresh = [&](const std::string& name) {
    std::string dir = temp_dir(name);
    save_model(model, dir, {at::kFloat, uint64_t{5} << 30});
    return dir;
  };
  const auto load = [](const std::string& dir) { load_model(dir, at::TensorOptions().dtype(at::kFloat)); };

  std::string dir = fresh("missing_tensor");
  rewrite_weights(dir, [](auto& t) { t.erase(t.begin() + 3); });
  std::string e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("missing tensor \"model.layers.0.self_attn.v_proj.weight\""), std::string::npos) << e;

  dir = fresh("bad_shape");
  rewrite_weights(dir, [](auto& t) { t[2].shape = {t[2].shape[1], t[2].shape[0]}; });
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("model.safetensors: tensor \"model.layers.0.self_attn.k_proj.weight\" has shape"),
            std::string::npos) << e;

  dir = fresh("unexpected");
  rewrite_weights(dir, [](auto& t) { t.push_back({"model.extra.weight", safetensors::DType::F32, {1}, t[0].data, 4}); });
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("unexpected tensor \"model.extra.weight\""), std::string::npos) << e;

  // Old conversions carry the rotary buffers; transformers ignores them, so do we.
  dir = fresh("rotary_buffer");
  rewrite_weights(dir, [](auto& t) {
    t.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", safetensors::DType::F32, {1}, t[0].data, 4});
  });
  EXPECT_EQ(error_of([&] { load(dir); }), "<no error>");

  dir = fresh("int_dtype");
  rewrite_weights(dir, [](auto& t) { t[0].dtype = safetensors::DType::I32; });
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("tensor \"model.embed_tokens.weight\": dtype I32"), std::string::npos) << e;

  dir = fresh("no_config");
  fs::remove(dir + "/config.json");
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("config.json: missing"), std::string::npos) << e;

  dir = fresh("no_weights");
  fs::remove(dir + "/model.safetensors");
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("no weights"), std::string::npos) << e;

  dir = fresh("truncated");
  fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 10);
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
}

}  // namespace
}  // namespace st
