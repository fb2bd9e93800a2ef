#include "train/optimizer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

#include "common/error.h"

namespace st::train {

bool AdamW::decays(const std::string& name, int64_t dim) {
  // transformers' Trainer decays all but biases and norms: the matrices,
  // and DoRA's magnitude vector (1-D, but not a norm by its name).
  return dim >= 2 || name.ends_with("lora_magnitude_vector");
}

AdamW::AdamW(NamedTensors parameters, AdamWOptions options, bool master_weights,
             const NamedTensors& initial_masters, const std::vector<bool>& decay)
    : options_(options), masters_(master_weights) {
  ST_CHECK(decay.empty() || decay.size() == parameters.size(), "one decay flag per parameter");
  std::map<std::string, at::Tensor> initial(initial_masters.begin(), initial_masters.end());
  for (auto& [name, param] : parameters) {
    Slot slot;
    slot.name = name;
    slot.param = param;
    // Without masters the update runs on the model's own tensor, in its dtype.
    // Without masters, autograd accumulates into the parameter's own .grad
    // across micro-batches: no second copy of the gradients.
    auto from = initial.find(name);
    if (master_weights && from != initial.end()) {
      ST_CHECK(from->second.sizes() == param.sizes(), "initial master ", name, " has another shape");
      slot.master = from->second.detach().to(param.device(), at::kFloat).clone();
    } else {
      slot.master = master_weights ? param.detach().to(at::kFloat).clone() : param.detach();
    }
    if (master_weights) slot.grad = at::zeros_like(slot.master);
    slot.exp_avg = at::zeros_like(slot.master);
    slot.exp_avg_sq = at::zeros_like(slot.master);
    slot.decay = decay.empty() ? decays(name, param.dim()) : decay[slots_.size()];
    slots_.push_back(std::move(slot));
  }
}

void AdamW::accumulate_gradients() {
  for (size_t i = 0; i < slots_.size(); ++i) accumulate_gradient(i);
}

void AdamW::accumulate_gradient(size_t i) {
  if (!masters_) return;  // autograd has added into .grad already
  Slot& s = slots_.at(i);
  at::Tensor g = s.param.grad();
  if (!g.defined()) return;
  s.grad.add_(g);  // widened as it is added: no fp32 temporary
  s.param.mutable_grad() = at::Tensor();
}

NamedTensors AdamW::parameters() const {
  NamedTensors out;
  for (const Slot& s : slots_) out.emplace_back(s.name, s.param);
  return out;
}

at::Tensor AdamW::gradient(const Slot& s) const {
  if (masters_) return s.grad;
  at::Tensor g = s.param.grad();
  return g.defined() ? g : at::zeros_like(s.master);
}

std::vector<at::Tensor> AdamW::gradients() const {
  std::vector<at::Tensor> out;
  for (const Slot& s : slots_) out.push_back(accumulator(s));
  return out;
}

double AdamW::gradient_norm() const {
  // As clip_grad_norm_: the norm of the per-tensor norms.
  std::vector<at::Tensor> norms;
  for (const Slot& s : slots_) norms.push_back(gradient(s).to(at::kFloat).norm(2));
  if (norms.empty()) return 0;
  return at::stack(norms).norm(2).item<double>();
}

void AdamW::scale_gradients(double factor) {
  for (Slot& s : slots_) gradient(s).mul_(factor);
}

at::Tensor AdamW::accumulator(const Slot& s) const {
  if (masters_) return s.grad;
  // Autograd adds into a .grad that exists (in place), so later gradients
  // of the same parameter (a tied embedding's) still arrive.
  at::Tensor param = s.param;
  if (!param.grad().defined()) param.mutable_grad() = at::zeros_like(param);
  return param.grad();
}

at::Tensor AdamW::gradient_accumulator(const std::string& name) const {
  for (const Slot& s : slots_)
    if (s.name == name) return accumulator(s);
  return at::Tensor();
}

void AdamW::zero_gradients() {
  for (Slot& s : slots_) {
    if (masters_) s.grad.zero_();
    else s.param.mutable_grad() = at::Tensor();
  }
}

void AdamW::step(double lr) {
  ++steps_;
  // Two groups: with and without weight decay (one fused call each).
  for (bool decay : {true, false}) {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (Slot& s : slots_) {
      if (s.decay != decay) continue;
      params.push_back(s.master);
      grads.push_back(gradient(s));
      exp_avgs.push_back(s.exp_avg);
      exp_avg_sqs.push_back(s.exp_avg_sq);
    }
    if (params.empty()) continue;
    // The fused kernel reads each tensor's step count on the device: one
    // fill for the whole group, one 0-dim view per tensor.
    const at::Tensor counts = at::full({static_cast<int64_t>(params.size())}, static_cast<double>(steps_),
                                       params.front().options().dtype(at::kFloat));
    for (int64_t i = 0; i < counts.size(0); ++i) steps.push_back(counts[i]);
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, options_.beta1,
                      options_.beta2, decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
  if (masters_) {
    at::NoGradGuard no_grad;
    for (Slot& s : slots_) s.param.copy_(s.master);
  }
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    out.emplace_back("exp_avg." + s.name, s.exp_avg);
    out.emplace_back("exp_avg_sq." + s.name, s.exp_avg_sq);
    if (masters_) out.emplace_back("master." + s.name, s.master);
  }
  return out;
}

void AdamW::load_state(const NamedTensors& state, int64_t steps) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  auto take = [&](const std::string& key, at::Tensor& into) {
    auto it = by_name.find(key);
    if (it == by_name.end()) fail("training state: no tensor \"", key, "\"");
    if (!it->second.sizes().equals(into.sizes()) || it->second.scalar_type() != into.scalar_type())
      fail("training state: tensor \"", key, "\" has shape ", it->second.sizes(), " and dtype ",
           it->second.scalar_type(), ", expected ", into.sizes(), " and ", into.scalar_type());
    into.copy_(it->second);
  };
  at::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    take("exp_avg." + s.name, s.exp_avg);
    take("exp_avg_sq." + s.name, s.exp_avg_sq);
    if (masters_) {
      take("master." + s.name, s.master);
      s.param.copy_(s.master);
    }
  }
  steps_ = steps;
}

}  // namespace st::train
