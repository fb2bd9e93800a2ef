// Activation recomputation ("activation checkpointing" in transformers) of
// one decoder layer: the forward pass keeps only the layer's input; backward
// re-runs the layer with autograd on and differentiates it with respect to
// the input and every tensor the layer describes (parameter.h) that
// requires grad, adapters included. Memory per layer drops from all intermediate activations
// to one [B, T, hidden] tensor, for one extra forward per layer.
#pragma once

#include <ATen/core/Tensor.h>

#include "model/config.h"
#include "model/layer_residency.h"
#include "model/layers.h"

namespace st {

/// Where the layer's weights are between uses: acquired around the forward
/// and again around the recomputation (null residency: always in memory).
struct LayerSlot {
  LayerResidency* residency = nullptr;
  int64_t index = 0;
};

/// decoder_layer_forward with recomputation in backward. Gradients reach the
/// input and every tensor of the layer that requires grad.
at::Tensor recomputed_decoder_layer(const ModelConfig& config, const DecoderLayer& layer,
                                    const at::Tensor& hidden, const RotaryTables& rotary,
                                    const AttentionMask& mask, LayerSlot slot = {});

}  // namespace st
