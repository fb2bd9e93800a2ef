#include "model/lm_head.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "common/error.h"
#include "kernels/op_dtypes.h"

namespace st {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Logits of one chunk in the model dtype, as transformers' lm_head computes them.
at::Tensor chunk_logits(const at::Tensor& hidden_chunk, const at::Tensor& weight) {
  return at::mm(hidden_chunk, weight.t());
}

// cuBLAS can multiply bf16 matrices into an fp32 result (ATen's mm/addmm
// with out_dtype), which saves rounding a partial product to bf16 and a
// conversion pass. Whether this device and cuBLAS support it is checked once
// on a small product; without it the product is rounded, then widened.
bool widening_matmul_works(const at::Tensor& like) {
  static const bool works = [&] {
    try {
      auto options = like.options().dtype(at::kBFloat16);
      // Fixed values, not the random generator: probing must not shift a seeded run.
      at::Tensor a = at::linspace(-2.0, 2.0, 128, options).view({8, 16});
      at::Tensor b = at::linspace(1.5, -1.0, 128, options).view({16, 8});
      at::Tensor expected = at::mm(a.to(at::kFloat), b.to(at::kFloat));
      at::Tensor sum = at::zeros({8, 8}, options.dtype(at::kFloat));
      at::addmm_out(sum, sum, a, b, at::kFloat);
      at::addmm_out(sum, sum, a, b, at::kFloat);
      return at::mm(a, b, at::kFloat).allclose(expected, 1e-3, 1e-3) && sum.allclose(2 * expected, 1e-3, 1e-3);
    } catch (const std::exception&) {
      return false;
    }
  }();
  return works;
}

bool widening(const at::Tensor& a, at::ScalarType acc) {
  return a.is_cuda() && a.scalar_type() == at::kBFloat16 && acc == at::kFloat && widening_matmul_works(a);
}

// a @ b in the accumulate dtype. Without the widening product (the CPU) the
// operands are widened first: exact products and one rounding at the end
// (the caller scales the result and rounds it again). `b_widened` is b in
// the accumulate dtype when the caller has it (a weight, widened once per
// call rather than per chunk).
at::Tensor mm_accumulate(const at::Tensor& a, const at::Tensor& b, at::ScalarType acc,
                         const at::Tensor& b_widened = {}) {
  if (widening(a, acc)) return at::mm(a, b, acc);
  if (a.scalar_type() == acc) return at::mm(a, b);
  return at::mm(a.to(acc), b_widened.defined() ? b_widened : b.to(acc));
}

// sum += scale * (a @ b), sum in the accumulate dtype or in a's own (a
// low-precision sink: the matmul adds in fp32 and rounds once into it).
void addmm_accumulate_(at::Tensor& sum, const at::Tensor& a, const at::Tensor& b, double scale = 1.0) {
  const at::ScalarType acc = sum.scalar_type();
  if (widening(a, acc))
    at::addmm_out(sum, sum, a, b, acc, /*beta=*/1, /*alpha=*/scale);
  else if (a.scalar_type() == acc)
    sum.addmm_(a, b, /*beta=*/1, /*alpha=*/scale);
  else
    sum.addmm_(a.to(acc), b.to(acc), /*beta=*/1, /*alpha=*/scale);
}

// -------------------------------------------------------------- per-row log-probs

class ChunkedTargetLogProbs : public torch::autograd::Function<ChunkedTargetLogProbs> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk_rows, const WeightGradSink& sink) {
    const int64_t rows = hidden.size(0);
    at::Tensor log_probs = at::empty({rows}, hidden.options().dtype(arithmetic_dtype(weight)));
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - start);
      RowLogSoftmax stats =
          log_softmax_rows(chunk_logits(hidden.narrow(0, start, n), weight), targets.narrow(0, start, n));
      log_probs.narrow(0, start, n).copy_(stats.target_log_prob);
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk_rows"] = chunk_rows;
    // The optimizer's buffer, not a saved activation: backward adds into it.
    if (sink.accumulator.defined()) {
      ctx->saved_data["sink"] = sink.accumulator;
      ctx->saved_data["sink_scale"] = sink.scale;
    }
    return log_probs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const int64_t rows = hidden.size(0);
    const at::ScalarType acc = arithmetic_dtype(weight);
    const bool want_hidden = ctx->needs_input_grad(0);
    // With a sink the weight gradient goes there (fp32, scaled), not to autograd.
    const bool to_sink = ctx->needs_input_grad(1) && ctx->saved_data.count("sink") > 0;
    const bool want_weight = ctx->needs_input_grad(1) && !to_sink;
    at::Tensor sink = to_sink ? ctx->saved_data["sink"].toTensor() : at::Tensor();
    const double sink_scale = to_sink ? ctx->saved_data["sink_scale"].toDouble() : 1.0;
    // Contiguous once (after a .sum() it is an expanded view), not per chunk.
    const at::Tensor coeff = grad_outputs[0].to(acc).contiguous();
    at::Tensor grad_hidden = want_hidden ? at::empty_like(hidden) : at::Tensor();
    // Weight gradients accumulate over chunks in fp32, like one big matmul would.
    at::Tensor grad_weight = want_weight ? at::zeros(weight.sizes(), weight.options().dtype(acc)) : at::Tensor();
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - start);
      const at::Tensor h = hidden.narrow(0, start, n);
      // The logits are recomputed, and with them the statistics, in the same
      // pass that writes the gradient over them: nothing but the inputs is saved.
      at::Tensor grad_logits = chunk_logits(h, weight);
      log_softmax_rows_with_grad_(grad_logits, targets.narrow(0, start, n), coeff.narrow(0, start, n));
      if (want_hidden) grad_hidden.narrow(0, start, n).copy_(at::mm(grad_logits, weight));
      if (want_weight) addmm_accumulate_(grad_weight, grad_logits.t(), h);
      if (to_sink) addmm_accumulate_(sink, grad_logits.t(), h, sink_scale);
    }
    return {grad_hidden, want_weight ? grad_weight.to(weight.scalar_type()) : at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

// -------------------------------------------------------------- summed NLL

class ChunkedSummedNll : public torch::autograd::Function<ChunkedSummedNll> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk_rows, bool want_hidden, bool want_weight,
                            const WeightGradSink& sink) {
    const int64_t rows = hidden.size(0);
    const at::ScalarType acc = arithmetic_dtype(weight);
    at::Tensor nll = at::zeros({}, hidden.options().dtype(acc));
    const bool to_sink = want_weight && sink.accumulator.defined();
    if (to_sink) want_weight = false;  // autograd gets no weight gradient
    const bool want_grad = want_hidden || want_weight || to_sink;
    // d(-sum log p)/d log p = -1 per row; the upstream factor comes in backward.
    const at::Tensor coeff = want_grad ? at::full({rows}, -1.0, hidden.options().dtype(at::kFloat)) : at::Tensor();
    at::Tensor grad_hidden =
        want_hidden ? at::empty({rows, hidden.size(1)}, hidden.options().dtype(acc)) : at::Tensor();
    at::Tensor grad_weight = want_weight ? at::zeros(weight.sizes(), weight.options().dtype(acc)) : at::Tensor();
    // Without the widening product, the weight widened once for every chunk's hidden gradient.
    const at::Tensor weight_widened = want_hidden && weight.scalar_type() != acc && !widening(weight, acc)
                                          ? weight.to(acc)
                                          : at::Tensor();
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - start);
      const at::Tensor h = hidden.narrow(0, start, n);
      at::Tensor logits = chunk_logits(h, weight);
      if (!want_grad) {
        nll.sub_(log_softmax_rows(logits, targets.narrow(0, start, n)).target_log_prob.sum());
        continue;
      }
      // From here on `logits` holds their gradient.
      RowLogSoftmax stats = log_softmax_rows_with_grad_(logits, targets.narrow(0, start, n), coeff.narrow(0, start, n));
      nll.sub_(stats.target_log_prob.sum());
      if (want_hidden) grad_hidden.narrow(0, start, n).copy_(mm_accumulate(logits, weight, acc, weight_widened));
      if (want_weight) addmm_accumulate_(grad_weight, logits.t(), h);
      if (to_sink) {
        at::Tensor accumulator = sink.accumulator;
        addmm_accumulate_(accumulator, logits.t(), h, sink.scale);
      }
    }
    ctx->saved_data["dtype"] = hidden.scalar_type();  // also the weight's (checked by the caller)
    if (to_sink) ctx->saved_data["sink_scale"] = sink.scale;
    ctx->saved_data["grad_hidden"] = grad_hidden;
    ctx->saved_data["grad_weight"] = grad_weight;
    return nll;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    // The gradients were computed in forward (and a sink's share already
    // added): they serve one backward, and are released by it rather than
    // held until the whole graph is freed.
    if (ctx->saved_data.count("grad_hidden") == 0)
      fail("summed_target_nll: a second backward through the same loss is not supported (its gradients are "
           "computed in forward and released by the first backward; retain_graph does not keep them)");
    const at::Tensor& upstream = grad_outputs[0];
    if (upstream.requires_grad())
      fail("summed_target_nll: double backward (create_graph) is not supported");
    // The sink's share went in during forward at the scale the caller
    // promised; any other upstream factor (loss scaling, averaging that is
    // not in the scale, a loss built on top) would leave the weight gradient
    // silently wrong, so it is refused. One host read of a scalar.
    if (ctx->saved_data.count("sink_scale")) {
      const double promised = ctx->saved_data["sink_scale"].toDouble();
      const double got = upstream.item<double>();
      const double eps = upstream.scalar_type() == at::kDouble ? 1e-15 : 1e-7;
      if (!(std::abs(got - promised) <= 4 * eps * std::abs(promised)))
        fail("summed_target_nll: backward brought an upstream gradient of ", got, " but the weight-gradient sink ",
             "was filled at scale ", promised, "; the step that owns the scale must pass it to both ",
             "(train/step.h: StepScale)");
    }
    const at::Tensor grad_hidden = ctx->saved_data["grad_hidden"].toTensor();
    const at::Tensor grad_weight = ctx->saved_data["grad_weight"].toTensor();
    ctx->saved_data.erase("grad_hidden");
    ctx->saved_data.erase("grad_weight");
    const at::ScalarType dtype = ctx->saved_data["dtype"].toScalarType();
    // Scaled and rounded in one pass each, with no full-size fp32 temporary.
    auto scaled = [&](const at::Tensor& g) {
      if (!g.defined()) return at::Tensor();
      at::Tensor out = at::empty(g.sizes(), g.options().dtype(dtype));
      return at::mul_out(out, g, upstream.to(g.scalar_type()));
    };
    return {scaled(grad_hidden), scaled(grad_weight), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_shapes(const char* what, const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                  int64_t chunk_rows) {
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1)
    fail(what, ": expected hidden [N, H], weight [V, H], targets [N], got ", hidden.sizes(), ", ", weight.sizes(),
         ", ", targets.sizes());
  if (hidden.size(1) != weight.size(1) || hidden.size(0) != targets.size(0))
    fail(what, ": shapes disagree: hidden ", hidden.sizes(), ", weight ", weight.sizes(), ", targets ",
         targets.sizes());
  if (hidden.scalar_type() != weight.scalar_type())
    fail(what, ": hidden is ", hidden.scalar_type(), " but weight is ", weight.scalar_type());
  if (chunk_rows <= 0) fail(what, ": chunk_rows must be positive, got ", chunk_rows);
}

void check_sink(const char* what, const WeightGradSink& sink, const at::Tensor& weight) {
  const at::Tensor& a = sink.accumulator;
  if (!a.defined()) return;
  const at::ScalarType acc = arithmetic_dtype(weight);
  const bool dtype_ok = a.scalar_type() == acc || a.scalar_type() == weight.scalar_type();
  if (a.sizes() != weight.sizes() || a.device() != weight.device() || !dtype_ok || !a.is_contiguous())
    fail(what, ": the weight-gradient sink must be a contiguous ", acc, " or ", weight.scalar_type(), " tensor of ",
         weight.sizes(), " on ", weight.device(), ", got ", a.scalar_type(), " ", a.sizes(), " on ", a.device());
}

// int64 targets on the weight's device, each a vocabulary id or ignored
// (one device-to-host sync per call, not per chunk).
at::Tensor checked_targets(const char* what, const at::Tensor& targets, const at::Tensor& weight) {
  at::Tensor t = targets.to(weight.device(), at::kLong);
  if (t.numel() > 0) {
    const auto [min, max] = at::aminmax(t);
    const at::Tensor both = at::stack({min, max}).cpu();
    const int64_t low = both[0].item<int64_t>(), high = both[1].item<int64_t>();
    if (high >= weight.size(0) || (low < 0 && low != kIgnoreTarget))
      fail(what, ": target ids must lie in [0, ", weight.size(0), ") or be ", kIgnoreTarget, "; found [", low, ", ",
           high, "]");
  }
  return t;
}

}  // namespace

at::Tensor target_log_probs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            int64_t chunk_rows, const WeightGradSink& sink) {
  check_shapes("target_log_probs", hidden, weight, targets, chunk_rows);
  check_sink("target_log_probs", sink, weight);
  return ChunkedTargetLogProbs::apply(hidden, weight, checked_targets("target_log_probs", targets, weight),
                                      chunk_rows, sink);
}

at::Tensor summed_target_nll(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                             int64_t chunk_rows, const WeightGradSink& sink) {
  check_shapes("summed_target_nll", hidden, weight, targets, chunk_rows);
  check_sink("summed_target_nll", sink, weight);
  const bool grad = at::GradMode::is_enabled();
  return ChunkedSummedNll::apply(hidden, weight, checked_targets("summed_target_nll", targets, weight), chunk_rows,
                                 grad && hidden.requires_grad(), grad && weight.requires_grad(), sink);
}

}  // namespace st
