#include "model/layers.h"

#include <ATen/ATen.h>

#include <tuple>

#include "common/error.h"
#include "model/kernels/rms_norm_op.h"
#include "model/kernels/rotary_op.h"
#include "model/kernels/swiglu_op.h"

namespace st {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // As transformers' LlamaRMSNorm: statistics in fp32, the weight multiplies
  // the result after the cast back to the input dtype.
  at::Tensor x32 = x.to(at::kFloat);
  at::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor normed = x32 * at::rsqrt(variance + eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor rotary_inverse_frequencies(const ModelConfig& config, const at::Device& device) {
  const int64_t dim = config.head_dim;
  at::Tensor exponents =
      at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = 1.0 / at::pow(config.rope_theta, exponents);
  // Linear scaling divides the frequencies, as if positions were divided.
  if (config.rope_linear_factor != 1.0) inv_freq = inv_freq / config.rope_linear_factor;
  return inv_freq.to(device);
}

RotaryTables rotary_tables(const at::Tensor& inverse_frequencies, const at::Tensor& position_ids,
                           at::ScalarType dtype) {
  at::Tensor freqs = position_ids.unsqueeze(-1).to(at::kFloat) * inverse_frequencies.to(at::kFloat);
  at::Tensor angles = at::cat({freqs, freqs}, -1);
  return {angles.cos().to(dtype), angles.sin().to(dtype), position_ids, inverse_frequencies.to(at::kFloat)};
}

at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& tables) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor first = x.narrow(-1, 0, half);
  at::Tensor second = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-second, first}, -1);
  // Tables are [B, T, D]; heads broadcast over dimension 1.
  return x * tables.cos.unsqueeze(1) + rotated * tables.sin.unsqueeze(1);
}

void DecoderLayer::collect(const std::string& prefix, NamedTensors& out) const {
  q_proj->collect(prefix + ".self_attn.q_proj", out);
  k_proj->collect(prefix + ".self_attn.k_proj", out);
  v_proj->collect(prefix + ".self_attn.v_proj", out);
  o_proj->collect(prefix + ".self_attn.o_proj", out);
  gate_proj->collect(prefix + ".mlp.gate_proj", out);
  up_proj->collect(prefix + ".mlp.up_proj", out);
  down_proj->collect(prefix + ".mlp.down_proj", out);
  out.emplace_back(prefix + ".input_layernorm.weight", input_layernorm);
  out.emplace_back(prefix + ".post_attention_layernorm.weight", post_attention_layernorm);
}

std::shared_ptr<Projection>* DecoderLayer::projection_slot(const std::string& local_name) {
  if (local_name == "self_attn.q_proj") return &q_proj;
  if (local_name == "self_attn.k_proj") return &k_proj;
  if (local_name == "self_attn.v_proj") return &v_proj;
  if (local_name == "self_attn.o_proj") return &o_proj;
  if (local_name == "mlp.gate_proj") return &gate_proj;
  if (local_name == "mlp.up_proj") return &up_proj;
  if (local_name == "mlp.down_proj") return &down_proj;
  return nullptr;
}

namespace {

at::Tensor attention(const ModelConfig& config, const DecoderLayer& layer, const at::Tensor& x,
                     const RotaryTables& rotary, const AttentionMask& mask, LayerCache* cache) {
  const int64_t batch = x.size(0), steps = x.size(1), dim = config.head_dim;
  auto heads_first = [&](const at::Tensor& t, int64_t heads) {
    return t.view({batch, steps, heads, dim}).transpose(1, 2);
  };
  at::Tensor q = heads_first(layer.q_proj->forward(x), config.num_attention_heads);
  at::Tensor k = heads_first(layer.k_proj->forward(x), config.num_key_value_heads);
  at::Tensor v = heads_first(layer.v_proj->forward(x), config.num_key_value_heads);
  std::tie(q, k) = apply_rotary_qk(q, k, rotary);
  if (cache) {
    if (cache->keys.defined()) {
      k = at::cat({cache->keys, k}, 2);
      v = at::cat({cache->values, v}, 2);
    }
    cache->keys = k;
    cache->values = v;
  }
  const bool causal = mask.causal && !mask.mask.defined() && steps > 1;
  std::optional<at::Tensor> attn_mask;
  if (mask.mask.defined()) attn_mask = mask.mask;
  // enable_gqa lets SDPA broadcast the KV heads instead of materialising
  // repeated copies; the arithmetic equals transformers' repeat_kv.
  at::Tensor out = at::scaled_dot_product_attention(
      q, k, v, attn_mask, /*dropout_p=*/0.0, causal, /*scale=*/std::pow(static_cast<double>(dim), -0.5),
      /*enable_gqa=*/config.num_key_value_heads != config.num_attention_heads);
  out = out.transpose(1, 2).reshape({batch, steps, config.num_attention_heads * dim});
  return layer.o_proj->forward(out);
}

}  // namespace

at::Tensor decoder_layer_forward(const ModelConfig& config, const DecoderLayer& layer,
                                 const at::Tensor& hidden, const RotaryTables& rotary,
                                 const AttentionMask& mask, LayerCache* cache) {
  // add_rms_norm/swiglu/apply_rotary_qk take the ATen reference unless the
  // fused CUDA kernels are opted in; the arithmetic is then exactly the
  // previous composition (h = hidden + attention; rms_norm(h); silu(g) * u).
  at::Tensor normed_input = add_rms_norm(hidden, at::Tensor(), layer.input_layernorm, config.rms_norm_eps).normed;
  AddRmsNormOutput post = add_rms_norm(attention(config, layer, normed_input, rotary, mask, cache), hidden,
                                       layer.post_attention_layernorm, config.rms_norm_eps);
  at::Tensor mlp =
      layer.down_proj->forward(swiglu(layer.gate_proj->forward(post.normed), layer.up_proj->forward(post.normed)));
  return post.sum + mlp;
}

}  // namespace st
