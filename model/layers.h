// The building blocks of the Llama decoder as plain functions on tensors:
// RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU MLP.
// Each one reproduces the Hugging Face LlamaForCausalLM computation operation
// by operation (same dtype casts in the same places), because our parity
// tests demand fp32 agreement to ~1e-5 and bf16 error no worse than theirs.
// These are also the ATen reference paths for the fused CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <vector>

#include "model/config.h"
#include "model/projection.h"

namespace st {

/// x * rsqrt(mean(x^2) + eps) computed in fp32, cast back, times weight.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

/// The rotary inverse frequencies [head_dim/2] in fp32 (theta and linear scaling applied).
at::Tensor rotary_inverse_frequencies(const ModelConfig& config, const at::Device& device);

/// cos and sin tables [B, T, head_dim] for given position ids [B, T], in `dtype`.
/// The position ids and fp32 inverse frequencies they came from ride along
/// for the fused rotary kernel, which computes the angles itself (tables
/// built without them simply keep the ATen path).
struct RotaryTables {
  at::Tensor cos;
  at::Tensor sin;
  at::Tensor position_ids;         // [B or 1, T] integers, or undefined
  at::Tensor inverse_frequencies;  // [head_dim / 2] fp32, or undefined
};
RotaryTables rotary_tables(const at::Tensor& inverse_frequencies, const at::Tensor& position_ids,
                           at::ScalarType dtype);

/// Rotates x [B, heads, T, head_dim] by the tables (x*cos + rotate_half(x)*sin).
at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& tables);

/// Which keys each query may see. Either causal (the fast path: no mask
/// tensor), or an explicit boolean mask [B or 1, 1, T, S] (true = attend) for
/// cached prefill after earlier tokens or packed documents.
struct AttentionMask {
  bool causal = true;
  at::Tensor mask;
};

/// Cached keys and values of one layer, [B, kv_heads, S, head_dim].
struct LayerCache {
  at::Tensor keys;
  at::Tensor values;
};

/// One decoder layer's weights; projections are replaceable wrappers.
struct DecoderLayer {
  at::Tensor input_layernorm;           // [hidden]
  at::Tensor post_attention_layernorm;  // [hidden]
  std::shared_ptr<Projection> q_proj, k_proj, v_proj, o_proj;
  std::shared_ptr<Projection> gate_proj, up_proj, down_proj;

  /// Appends the parameters under "model.layers.N" style `prefix`.
  void collect(const std::string& prefix, NamedTensors& out) const;
  /// Returns the projection slot for a local name such as "self_attn.q_proj".
  std::shared_ptr<Projection>* projection_slot(const std::string& local_name);
};

/// Applies one layer: pre-norm attention and pre-norm SwiGLU MLP with
/// residuals. With `cache`, appends this step's keys and values to it.
/// On CUDA, the fused kernels (model/kernels/) replace the residual add +
/// RMSNorm, the rotary embedding and SwiGLU when opted in (fused_switch.h).
at::Tensor decoder_layer_forward(const ModelConfig& config, const DecoderLayer& layer,
                                 const at::Tensor& hidden, const RotaryTables& rotary,
                                 const AttentionMask& mask, LayerCache* cache);

}  // namespace st
