// The building blocks of the Llama decoder as plain functions on tensors:
// RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU MLP.
// Each one reproduces the Hugging Face LlamaForCausalLM computation operation
// by operation (same dtype casts in the same places), because our parity
// tests demand fp32 agreement to ~1e-5 and bf16 error no worse than theirs.
// The reference formulas of the fused ops (rms_norm, rotary tables) live with
// the ops in kernels/, below this library.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <vector>

#include "kernels/rotary_op.h"  // RotaryTables, the reference rotation
#include "model/config.h"
#include "model/projection.h"

namespace st {

/// The rotary inverse frequencies [head_dim/2] in fp32 (theta and linear scaling applied).
at::Tensor rotary_inverse_frequencies(const ModelConfig& config, const at::Device& device);

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

  /// Appends the layer's tensors under "model.layers.N" style `prefix`,
  /// marked with `layer` (its index).
  void describe(const std::string& prefix, int64_t layer, ParameterList& out) const;
  /// Every projection with its local name ("self_attn.q_proj", ...).
  std::vector<std::pair<const char*, const std::shared_ptr<Projection>*>> projections() const;
  /// Returns the projection slot for a local name such as "self_attn.q_proj".
  std::shared_ptr<Projection>* projection_slot(const std::string& local_name);
};

/// Applies one layer: pre-norm attention and pre-norm SwiGLU MLP with
/// residuals. With `cache`, appends this step's keys and values to it.
/// On CUDA, the fused kernels (kernels/) replace the residual add +
/// RMSNorm, the rotary embedding and SwiGLU when opted in (fused_switch.h).
at::Tensor decoder_layer_forward(const ModelConfig& config, const DecoderLayer& layer,
                                 const at::Tensor& hidden, const RotaryTables& rotary,
                                 const AttentionMask& mask, LayerCache* cache);

}  // namespace st
