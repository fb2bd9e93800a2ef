// The Salamandra decoder (Hugging Face LlamaForCausalLM): embedding, N
// pre-norm layers, final RMSNorm, LM head. Parameters are reachable by their
// Hugging Face names, projections are replaceable wrappers, and the LM head is
// kept separate from the body so callers choose how to use it: full logits
// for a few positions (generation), or chunked target log-probs (scoring and
// training, see lm_head.h) without [tokens x vocab] in memory.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/layer_residency.h"
#include "model/layers.h"
#include "model/projection.h"

namespace st {

/// Keys and values of every layer for incremental decoding.
struct KVCache {
  std::vector<LayerCache> layers;
  /// Number of positions already cached.
  int64_t length() const;
};

/// Inputs of one forward pass besides the token ids.
struct ForwardOptions {
  /// [B, T] positions; default: past length + 0..T-1 for every row.
  at::Tensor position_ids;
  /// Optional boolean [B or 1, 1, T, past+T] mask (true = attend). Without it
  /// attention is causal over the cache plus the new tokens.
  at::Tensor attention_mask;
  /// When given, keys/values are read from and appended to it.
  KVCache* cache = nullptr;
};

/// A Llama-architecture causal language model.
class LlamaModel {
 public:
  /// Allocates (uninitialised) weights with the given dtype and device.
  LlamaModel(const ModelConfig& config, const at::TensorOptions& options);

  const ModelConfig& config() const { return config_; }
  const at::TensorOptions& options() const { return options_; }

  /// Every tensor of the model with its role (parameter.h): the checkpoint's
  /// weights in checkpoint order (a tied LM head is not listed separately,
  /// as transformers saves it), adapters where wrapped projections hold
  /// them, then buffers. Base weights are trainable unless
  /// set_base_trainable(false).
  ParameterList parameters() const;
  /// The Hugging Face checkpoint's tensors (role kBase), in checkpoint order:
  /// what load_model expects and save_model writes.
  NamedTensors checkpoint_tensors() const;
  /// The trainable tensors: what the optimizer updates.
  NamedTensors trainable_parameters() const;
  /// The tensor with a name (any role); throws st::Error naming it.
  at::Tensor parameter(const std::string& name) const;

  /// Whether the base weights train (full fine-tuning) or stay frozen
  /// (adapter training). Takes effect in parameters() and require_grads().
  void set_base_trainable(bool trainable) { base_trainable_ = trainable; }
  /// Sets requires_grad on every tensor from its description: trainable ones
  /// on, the rest off.
  void require_grads();
  /// Switches every projection's adapters on or off (off: the base model).
  void set_adapters_enabled(bool enabled);
  /// Training (dropout active) or inference (the default), passed to every
  /// projection; the training skeleton switches it around its steps.
  void set_training(bool training);
  /// The slot of a projection by Hugging Face name, e.g.
  /// "model.layers.3.self_attn.q_proj"; replace it to wrap the projection.
  std::shared_ptr<Projection>& projection(const std::string& name);
  /// Every projection's Hugging Face name (without ".weight"), layer by layer.
  std::vector<std::string> projection_names() const;

  /// Fills every tensor by its described init, as transformers initialises a
  /// fresh model: normal(0, initializer_range) for projections and
  /// embeddings, ones for norms, zeros for biases (and the pad row of the
  /// embedding); kKeep tensors are left alone. Deterministic in `seed`.
  void init_random(uint64_t seed);

  /// Final-normed hidden states [B, T, hidden] for input ids [B, T].
  at::Tensor hidden_states(const at::Tensor& input_ids, const ForwardOptions& options = {}) const;
  /// Full logits [..., vocab] of the given hidden states, in the model dtype.
  /// Only for a few positions: 256k columns per token.
  at::Tensor logits(const at::Tensor& hidden) const;
  /// The LM head weight [vocab, hidden] (the embedding when tied).
  const at::Tensor& lm_head_weight() const { return config_.tie_word_embeddings ? embed_tokens_ : lm_head_; }
  /// Its Hugging Face name: where the LM head's gradient sink accumulates.
  const char* lm_head_weight_name() const {
    return config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /// Recompute each layer's activations in backward instead of storing them
  /// (model/recompute.h).
  void set_recompute_activations(bool enabled) { recompute_ = enabled; }
  bool recomputes_activations() const { return recompute_; }

  /// Where the weights are between uses (layer_residency.h); null: always
  /// in memory. With one set, a forward with gradients must recompute its
  /// layers, since autograd would otherwise keep weights that are let go.
  void set_residency(LayerResidency* residency) { residency_ = residency; }
  /// Moves every tensor (each keeps its identity: projections and
  /// autograd hooks still refer to it) and the model's options to `device`.
  void move_to(const at::Device& device);

 private:
  ModelConfig config_;
  at::TensorOptions options_;
  at::Tensor embed_tokens_;
  std::vector<DecoderLayer> layers_;
  at::Tensor norm_;
  at::Tensor lm_head_;
  at::Tensor inverse_frequencies_;  // fp32 rotary frequencies, not a parameter
  bool recompute_ = false;
  bool base_trainable_ = true;
  LayerResidency* residency_ = nullptr;
};

}  // namespace st
