#include "lora/lora_projection.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "common/error.h"

namespace st {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& lora_a,
           const at::Tensor& lora_b) {
  if (!x.defined() || !weight.defined() || !lora_a.defined() || !lora_b.defined())
    fail("lora_projection: x, weight, lora_a and lora_b must all be given");
  if (x.dim() < 1 || weight.dim() != 2 || lora_a.dim() != 2 || lora_b.dim() != 2)
    fail("lora_projection: expected x [..., in], weight [out, in], lora_a [r, in], lora_b [out, r]; got x ",
         x.sizes(), ", weight ", weight.sizes(), ", lora_a ", lora_a.sizes(), ", lora_b ", lora_b.sizes());
  const int64_t in = weight.size(1), out = weight.size(0), rank = lora_a.size(0);
  if (x.size(-1) != in || lora_a.size(1) != in || lora_b.size(0) != out || lora_b.size(1) != rank)
    fail("lora_projection: shapes disagree: x ", x.sizes(), ", weight ", weight.sizes(), " ([out, in]), lora_a ",
         lora_a.sizes(), " ([r, in]), lora_b ", lora_b.sizes(), " ([out, r])");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out))
    fail("lora_projection: bias must be [", out, "], got ", bias.sizes());
  for (const at::Tensor* t : {&weight, &bias, &lora_a, &lora_b}) {
    if (!t->defined()) continue;
    if (t->scalar_type() != x.scalar_type() || t->device() != x.device())
      fail("lora_projection: every tensor must share x's dtype and device (", x.scalar_type(), ", ", x.device(),
           "); got ", t->scalar_type(), " on ", t->device());
  }
  if (!at::isFloatingType(x.scalar_type()))
    fail("lora_projection: expected floating-point tensors, got ", x.scalar_type());
}

class LoraProjectionFunction : public torch::autograd::Function<LoraProjectionFunction> {
 public:
  // Without a bias, `bias` is an empty placeholder (autograd's inputs must
  // be defined tensors) and has_bias is false.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, bool has_bias, const at::Tensor& lora_a,
                            const at::Tensor& lora_b, double scale) {
    const at::Tensor rows = x.reshape({-1, x.size(-1)});
    at::Tensor xa = at::mm(rows, lora_a.t());  // [N, r]
    at::Tensor y = has_bias ? at::addmm(bias, rows, weight.t()) : at::mm(rows, weight.t());
    y.addmm_(xa, lora_b.t(), /*beta=*/1, /*alpha=*/scale);
    ctx->save_for_backward({rows, weight, lora_a, lora_b, xa});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["has_bias"] = has_bias;
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    return y.view(shape);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &weight = saved[1], &lora_a = saved[2], &lora_b = saved[3], &xa = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    // needs_input_grad counts tensor inputs only: x, weight, bias, lora_a, lora_b.
    const at::Tensor g = grad_outputs[0].reshape({-1, weight.size(0)});
    // s g B: [N, r], shared by the input and lora_a gradients.
    const at::Tensor gb =
        ctx->needs_input_grad(0) || ctx->needs_input_grad(3) ? at::mm(g, lora_b).mul_(scale) : at::Tensor();
    at::Tensor dx, dweight, dbias, da, db;
    if (ctx->needs_input_grad(0)) {
      dx = at::mm(g, weight);
      dx.addmm_(gb, lora_a);
      std::vector<int64_t> shape(grad_outputs[0].sizes().begin(), grad_outputs[0].sizes().end());
      shape.back() = weight.size(1);
      dx = dx.view(shape);
    }
    if (ctx->needs_input_grad(1)) dweight = at::mm(g.t(), rows);
    if (ctx->needs_input_grad(2) && ctx->saved_data["has_bias"].toBool()) dbias = g.sum(0);
    if (ctx->needs_input_grad(3)) da = at::mm(gb.t(), rows);
    if (ctx->needs_input_grad(4)) db = at::mm(g.t(), xa).mul_(scale);
    return {dx, dweight, dbias, at::Tensor(), da, db, at::Tensor()};
  }
};

}  // namespace

at::Tensor lora_projection(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& lora_a, const at::Tensor& lora_b, double scale) {
  check(x, weight, bias, lora_a, lora_b);
  const bool has_bias = bias.defined();
  return LoraProjectionFunction::apply(x, weight, has_bias ? bias : at::empty({0}, x.options()), has_bias, lora_a,
                                       lora_b, scale);
}

}  // namespace st
