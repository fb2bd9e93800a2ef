#include "train/gradient_hooks.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <memory>

#include "common/error.h"

namespace st::train {
namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(AdamW& optimizer, GradientSync& sync, size_t index) : optimizer(optimizer), sync(sync), index(index) {}
  void operator()(const torch::autograd::Variable&) override {
    // A second accumulation into this parameter in the same backward would
    // come after its bucket was sent: refuse rather than sum a part.
    ST_CHECK(!fired, "parameter ", index, "'s gradient was accumulated twice in one backward");
    fired = true;
    optimizer.accumulate_gradient(index);
    sync.ready(index);
  }
  AdamW& optimizer;
  GradientSync& sync;
  size_t index;
  bool fired = false;
};

}  // namespace

GradientHooks::GradientHooks(AdamW& optimizer, GradientSync& sync, const std::vector<size_t>& late) {
  const NamedTensors parameters = optimizer.parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const at::Tensor& p = parameters[i].second;
    if (std::find(late.begin(), late.end(), i) != late.end()) continue;
    torch::autograd::impl::set_post_acc_grad_hooks(p, std::make_unique<ReadyHook>(optimizer, sync, i));
    hooked_.push_back(p);
  }
}

GradientHooks::~GradientHooks() {
  for (const at::Tensor& p : hooked_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

}  // namespace st::train
