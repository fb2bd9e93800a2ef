// Shared by the packed-forward tests (CPU: packed_forward_test.cpp; CUDA:
// packed_forward_gpu_test.cpp): random documents, and the logits of each
// document from a packed (or padded) batch next to those of the document run
// alone through the same model.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <utility>
#include <vector>

#include "datasets/batching.h"
#include "model/document_mask.h"
#include "model/llama.h"
#include "tests/common/owned_sequences.h"

namespace st::test {

using Docs = OwnedSequences;

inline Docs random_docs(const std::vector<uint32_t>& lengths, int64_t vocab) {
  Docs docs;
  datasets::Shuffler rng(11);
  for (uint32_t length : lengths) {
    docs.ids.emplace_back();
    for (uint32_t t = 0; t < length; ++t) docs.ids.back().push_back(static_cast<uint32_t>(rng.below(vocab)));
    docs.masks.emplace_back(length, 1);
  }
  return docs;
}

inline at::Tensor ids_tensor(const std::vector<int32_t>& values, int64_t rows, int64_t cols,
                             const at::Device& device) {
  return at::tensor(values, at::kLong).view({rows, cols}).to(device);
}

/// Seven documents of 43 tokens packed best-fit into two rows of 24 (one
/// row padded): the case both packed-forward tests run.
struct Packing {
  Docs docs;
  datasets::BatchLayout layout;
  datasets::BatchOptions options;
};

inline Packing seven_documents_in_two_rows(int64_t vocab) {
  Packing p{random_docs({5, 9, 3, 12, 1, 7, 6}, vocab), {}, {}};
  std::vector<uint32_t> lengths;
  for (const auto& d : p.docs.ids) lengths.push_back(static_cast<uint32_t>(d.size()));
  p.layout = datasets::BatchLayout{datasets::pack_best_fit_decreasing(lengths, 24)};
  p.options = datasets::BatchOptions{.mode = datasets::BatchMode::kPacked, .row_tokens = 24, .rows = 2};
  return p;
}

/// For every document of the batch, in layout order: {its logits inside the
/// batch, its logits run alone}, both on the model's device.
inline std::vector<std::pair<at::Tensor, at::Tensor>> packed_and_alone_logits(const LlamaModel& model,
                                                                              const datasets::BatchLayout& layout,
                                                                              const Docs& docs,
                                                                              const datasets::BatchOptions& options) {
  at::NoGradGuard no_grad;
  const at::Device device = model.options().device();
  const datasets::Batch batch = materialize(layout, docs.view(), options, /*pad_id=*/0);
  ForwardOptions forward;
  forward.position_ids = ids_tensor(batch.position_ids, batch.rows, batch.cols, device);
  forward.attention_mask = document_attention_mask(ids_tensor(batch.document, batch.rows, batch.cols, device));
  const at::Tensor logits =
      model.logits(model.hidden_states(ids_tensor(batch.ids, batch.rows, batch.cols, device), forward));
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  for (int64_t r = 0; r < batch.rows; ++r) {
    int64_t at_col = 0;
    for (uint32_t d : layout.rows[r]) {
      const auto& ids = docs.ids[d];
      const std::vector<int32_t> as_int(ids.begin(), ids.end());
      const int64_t length = static_cast<int64_t>(ids.size());
      const at::Tensor alone = model.logits(model.hidden_states(ids_tensor(as_int, 1, length, device)))[0];
      out.emplace_back(logits[r].narrow(0, at_col, length), alone);
      at_col += length;
    }
  }
  return out;
}

}  // namespace st::test
