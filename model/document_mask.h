// Attention masks for packed rows: several documents share a row, and no
// token may attend across a document boundary.
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// From per-token document numbers [B, T] (int, -1 for padding) to the
/// boolean mask [B, 1, T, T] (true = attend) that LlamaModel's
/// ForwardOptions::attention_mask takes: causal within each document,
/// nothing across documents. A padding token attends only to itself, so its
/// softmax row is defined (its outputs are never used).
at::Tensor document_attention_mask(const at::Tensor& document);

}  // namespace st
