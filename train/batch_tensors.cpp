#include "train/batch_tensors.h"

#include <ATen/ATen.h>

#include "model/document_mask.h"
#include "model/lm_head.h"

namespace st::train {

BatchTensors to_tensors(const datasets::Batch& batch, const at::Device& device) {
  BatchTensors t;
  auto as_tensor = [&](const std::vector<int32_t>& v) {
    return at::tensor(v, at::kInt).to(at::kLong).view({batch.rows, batch.cols}).to(device);
  };
  t.ids = as_tensor(batch.ids);
  t.position_ids = as_tensor(batch.position_ids);
  // One document per row, padding only after it: plain causal attention
  // gives the real tokens the same result, without a mask tensor.
  bool single_documents = true;
  for (int32_t d : batch.document) single_documents = single_documents && d <= 0;
  if (!single_documents) t.attention_mask = document_attention_mask(as_tensor(batch.document));
  std::vector<int64_t> targets, rows;
  for (int64_t r = 0; r < batch.rows; ++r)
    for (int64_t c = 1; c < batch.cols; ++c) {
      const size_t at = static_cast<size_t>(r * batch.cols + c);
      if (!batch.loss_mask[at]) continue;
      targets.push_back(batch.ids[at]);
      rows.push_back(r * batch.cols + c - 1);
    }
  t.trained = static_cast<int64_t>(targets.size());
  t.targets = at::tensor(targets, at::kLong).to(device);
  t.target_rows = at::tensor(rows, at::kLong).to(device);
  return t;
}

at::Tensor trained_hidden_states(const LlamaModel& model, const BatchTensors& batch) {
  ForwardOptions options;
  options.position_ids = batch.position_ids;
  options.attention_mask = batch.attention_mask;
  const at::Tensor hidden = model.hidden_states(batch.ids, options);
  return hidden.reshape({-1, hidden.size(-1)}).index_select(0, batch.target_rows);
}

at::Tensor summed_nll(const LlamaModel& model, const BatchTensors& batch, int64_t chunk_rows,
                      const WeightGradSink& sink) {
  return summed_target_nll(trained_hidden_states(model, batch), model.lm_head_weight(), batch.targets, chunk_rows,
                           sink);
}

}  // namespace st::train
