#include "model/lm_head.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common/error.h"

namespace st {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The softmax runs in fp32, or in fp64 for fp64 models (tests that compare
// summation orders need fp64 all the way through).
at::ScalarType softmax_dtype(const at::Tensor& weight) {
  return weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Logits of one chunk in the softmax dtype, as transformers computes them:
// the matmul in the model dtype, then an upcast before the softmax.
at::Tensor chunk_logits(const at::Tensor& hidden_chunk, const at::Tensor& weight) {
  return at::linear(hidden_chunk, weight).to(softmax_dtype(weight));
}

class ChunkedTargetLogProbs : public torch::autograd::Function<ChunkedTargetLogProbs> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk_rows) {
    const int64_t rows = hidden.size(0);
    at::Tensor log_probs = at::empty({rows}, hidden.options().dtype(softmax_dtype(weight)));
    at::Tensor lse = at::empty({rows}, hidden.options().dtype(softmax_dtype(weight)));
    at::Tensor valid = targets.ne(kIgnoreTarget);
    at::Tensor safe_targets = targets.masked_fill(valid.logical_not(), 0);
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - start);
      at::Tensor logits = chunk_logits(hidden.narrow(0, start, n), weight);
      at::Tensor chunk_targets = safe_targets.narrow(0, start, n).unsqueeze(1);
      // ATen's fused log_softmax is faster on the CPU than logsumexp (one
      // pass, no temporaries); the log-sum-exp backward needs is recovered
      // as target logit - target log-prob.
      at::Tensor chunk_log_probs = at::log_softmax(logits, 1).gather(1, chunk_targets).squeeze(1);
      at::Tensor target_logit = logits.gather(1, chunk_targets).squeeze(1);
      lse.narrow(0, start, n).copy_(target_logit - chunk_log_probs);
      log_probs.narrow(0, start, n).copy_(chunk_log_probs);
    }
    log_probs.masked_fill_(valid.logical_not(), 0.0);
    ctx->save_for_backward({hidden, weight, safe_targets, valid, lse});
    ctx->saved_data["chunk_rows"] = chunk_rows;
    return log_probs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2], &valid = saved[3],
                     &lse = saved[4];
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const int64_t rows = hidden.size(0);
    const at::ScalarType acc = softmax_dtype(weight);
    at::Tensor grad = (grad_outputs[0].to(acc) * valid.to(acc));
    at::Tensor grad_hidden = at::empty_like(hidden);
    // Weight gradients accumulate over chunks in fp32, like one big matmul would.
    at::Tensor grad_weight = at::zeros(weight.sizes(), weight.options().dtype(acc));
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - start);
      at::Tensor h = hidden.narrow(0, start, n);
      at::Tensor probs = at::exp(chunk_logits(h, weight) - lse.narrow(0, start, n).unsqueeze(1));
      // d log p_t / d logits = onehot(t) - softmax.
      at::Tensor g = grad.narrow(0, start, n).unsqueeze(1);
      at::Tensor grad_logits = probs.mul_(g.neg());
      grad_logits.scatter_add_(1, targets.narrow(0, start, n).unsqueeze(1), g);
      at::Tensor grad_logits_dtype = grad_logits.to(weight.scalar_type());
      grad_hidden.narrow(0, start, n).copy_(at::mm(grad_logits_dtype, weight));
      grad_weight.add_(at::mm(grad_logits_dtype.t(), h).to(acc));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor target_log_probs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            int64_t chunk_rows) {
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1)
    fail("target_log_probs: expected hidden [N, H], weight [V, H], targets [N]");
  if (hidden.size(1) != weight.size(1) || hidden.size(0) != targets.size(0))
    fail("target_log_probs: shapes disagree: hidden ", hidden.sizes(), ", weight ", weight.sizes(), ", targets ",
         targets.sizes());
  if (chunk_rows <= 0) fail("target_log_probs: chunk_rows must be positive");
  return ChunkedTargetLogProbs::apply(hidden, weight, targets.to(at::kLong), chunk_rows);
}

}  // namespace st
