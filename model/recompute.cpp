#include "model/recompute.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace st {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Every tensor the layer describes, adapters included: the function's inputs
// besides the activations, so autograd routes each one's gradient through
// the recomputation. The description's order is the same in forward and
// backward.
std::vector<at::Tensor> layer_tensors(const DecoderLayer& layer) {
  ParameterList described;
  layer.describe("", -1, described);
  std::vector<at::Tensor> tensors;
  tensors.reserve(described.size());
  for (const ParameterInfo& p : described) tensors.push_back(p.tensor);
  return tensors;
}

// The default generator of the device the layer runs on.
at::Generator generator_of(const at::Tensor& t) { return at::globalContext().defaultGenerator(t.device()); }

// Backward needs the layer and config besides tensors; both belong to the
// model that built the graph and outlive it, so plain pointers are kept.
struct LayerCall {
  const ModelConfig* config;
  const DecoderLayer* layer;
  LayerSlot slot;
  bool causal;
  // Carried so the recomputation takes the same (fused or ATen) rotary path.
  at::Tensor position_ids, inverse_frequencies;
};

class RecomputedLayer : public torch::autograd::Function<RecomputedLayer> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& cos,
                            const at::Tensor& sin, const std::optional<at::Tensor>& mask, LayerCall call,
                            at::TensorList parameters) {
    at::Tensor mask_tensor = mask.value_or(at::Tensor());
    ctx->save_for_backward({hidden, cos, sin, mask_tensor});
    ctx->saved_data["config"] = reinterpret_cast<int64_t>(call.config);
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(call.layer);
    ctx->saved_data["causal"] = call.causal;
    ctx->saved_data["position_ids"] = call.position_ids;
    ctx->saved_data["inverse_frequencies"] = call.inverse_frequencies;
    // The generator's state before the layer: the recomputation replays the
    // same random draws (LoRA's dropout masks), as torch.utils.checkpoint's
    // preserve_rng_state does.
    ctx->saved_data["rng_state"] = generator_of(hidden).get_state();
    ctx->saved_data["residency"] = reinterpret_cast<int64_t>(call.slot.residency);
    ctx->saved_data["index"] = call.slot.index;
    at::NoGradGuard no_grad;
    if (call.slot.residency) call.slot.residency->acquire(call.slot.index);
    at::Tensor output = decoder_layer_forward(*call.config, *call.layer, hidden,
                                              {cos, sin, call.position_ids, call.inverse_frequencies},
                                              {call.causal, mask_tensor}, nullptr);
    if (call.slot.residency) call.slot.residency->release(call.slot.index);
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto* config = reinterpret_cast<const ModelConfig*>(ctx->saved_data["config"].toInt());
    const auto* layer = reinterpret_cast<const DecoderLayer*>(ctx->saved_data["layer"].toInt());
    const AttentionMask mask{ctx->saved_data["causal"].toBool(), saved[3]};
    at::Tensor hidden = saved[0].detach().requires_grad_(saved[0].requires_grad());
    const std::vector<at::Tensor> tensors = layer_tensors(*layer);
    auto* residency = reinterpret_cast<LayerResidency*>(ctx->saved_data["residency"].toInt());
    const int64_t index = ctx->saved_data["index"].toInt();
    if (residency) residency->acquire(index);
    at::Tensor output;
    {
      at::Generator generator = generator_of(hidden);
      const at::Tensor outside = generator.get_state();  // put back afterwards: backward draws nothing
      generator.set_state(ctx->saved_data["rng_state"].toTensor());
      at::AutoGradMode enable(true);
      const RotaryTables rotary{saved[1], saved[2], ctx->saved_data["position_ids"].toTensor(),
                                ctx->saved_data["inverse_frequencies"].toTensor()};
      output = decoder_layer_forward(*config, *layer, hidden, rotary, mask, nullptr);
      generator.set_state(outside);
    }
    // Differentiate with respect to whatever requires grad; the rest gets none.
    variable_list wrt;
    std::vector<int64_t> slot;  // index into the result list, -1 = input
    if (hidden.requires_grad()) { wrt.push_back(hidden); slot.push_back(-1); }
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].requires_grad()) { wrt.push_back(tensors[i]); slot.push_back(static_cast<int64_t>(i)); }
    variable_list grads = wrt.empty() ? variable_list{}
                                      : torch::autograd::grad({output}, wrt, {grad_outputs[0]},
                                                              /*retain_graph=*/false, /*create_graph=*/false,
                                                              /*allow_unused=*/true);
    // The gradients are tensors of their own: the weights can go before
    // autograd accumulates them.
    output = at::Tensor();
    if (residency) residency->release(index);
    // One slot per forward argument: hidden, cos, sin, mask, call, then each parameter.
    variable_list result(5 + tensors.size());
    for (size_t i = 0; i < grads.size(); ++i)
      result[slot[i] < 0 ? 0 : 5 + slot[i]] = grads[i];
    return result;
  }
};

}  // namespace

at::Tensor recomputed_decoder_layer(const ModelConfig& config, const DecoderLayer& layer,
                                    const at::Tensor& hidden, const RotaryTables& rotary,
                                    const AttentionMask& mask, LayerSlot slot) {
  const std::vector<at::Tensor> parameters = layer_tensors(layer);
  return RecomputedLayer::apply(
      hidden, rotary.cos, rotary.sin, std::optional<at::Tensor>(mask.mask),
      LayerCall{&config, &layer, slot, mask.causal, rotary.position_ids, rotary.inverse_frequencies},
      at::TensorList(parameters));
}

}  // namespace st
