#include "train/sharded_model.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/StorageImpl.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <memory>

#include "common/error.h"
#include "train/optimizer.h"

namespace st::train {
namespace {

// The whole tensor keeps its sizes and strides (autograd's graph refers to
// it) while its storage is emptied and refilled, as PyTorch's FSDP does.
void free_storage(const at::Tensor& t) {
  c10::StorageImpl* storage = t.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl();
  storage->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  storage->set_nbytes(0);
}

void allocate_storage(const at::Tensor& t) {
  c10::StorageImpl* storage = t.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl();
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (storage->nbytes() == bytes) return;
  storage->set_data_ptr_noswap(storage->allocator()->allocate(bytes));
  storage->set_nbytes(bytes);
}

// Rank r's slice of a flattened tensor of `numel`, `per` long, zero-padded.
at::Tensor slice_of(const at::Tensor& whole, int64_t numel, int64_t per, int rank) {
  at::Tensor shard = at::zeros({per}, whole.options().requires_grad(false));
  const int64_t begin = per * rank, end = std::min(numel, begin + per);
  if (end > begin) shard.narrow(0, 0, end - begin).copy_(whole.detach().reshape({-1}).narrow(0, begin, end - begin));
  return shard;
}

}  // namespace

// Once autograd has accumulated a layer weight's gradient for this
// backward: reduce-scatter it into the shard's .grad and drop it.
struct ShardGradientHook : torch::autograd::PostAccumulateGradHook {
  ShardGradientHook(ShardedModel& owner, size_t index) : owner(owner), index(index) {}
  void operator()(const torch::autograd::Variable& whole) override {
    at::Tensor gradient = whole.grad();
    const_cast<torch::autograd::Variable&>(whole).mutable_grad() = at::Tensor();
    owner.scatter_gradient(owner.entries_[index], gradient);
  }
  ShardedModel& owner;
  size_t index;
};

ShardedModel::ShardedModel(LlamaModel& model, ProcessGroup& group, const at::Device& device)
    : model_(model), group_(group), device_(device) {
  const int n = group.world_size();
  at::NoGradGuard no_grad;
  for (const ParameterInfo& p : model.parameters()) {
    if (p.role == TensorRole::kBuffer) continue;
    ST_CHECK(p.tensor.is_contiguous() && p.tensor.storage_offset() == 0, p.name, " is not a tensor of its own");
    Entry e;
    e.name = p.name;
    e.whole = p.tensor;
    e.numel = p.tensor.numel();
    e.per = (e.numel + n - 1) / n;
    e.layer = p.layer;
    e.trainable = p.trainable;
    e.shard = slice_of(p.tensor, e.numel, e.per, group.rank()).to(device);
    by_layer_[e.layer].push_back(entries_.size());
    entries_.push_back(std::move(e));
  }
  // The whole tensors move to the device empty: what they held is in the
  // shards now. Then the buffers follow.
  for (Entry& e : entries_) {
    if (e.whole.device() != device) e.whole.set_data(at::empty(e.whole.sizes(), e.whole.options().device(device)));
    free_storage(e.whole);
  }
  model.move_to(device);
  for (const auto& [layer, members] : by_layer_) whole_[layer] = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!e.trainable || e.layer == kOutside) continue;
    torch::autograd::impl::set_post_acc_grad_hooks(e.whole, std::make_unique<ShardGradientHook>(*this, i));
    hooked_.push_back(e.whole);
  }
  model.set_recompute_activations(true);
  model.set_residency(this);
}

ShardedModel::~ShardedModel() {
  model_.set_residency(nullptr);
  for (const at::Tensor& t : hooked_) torch::autograd::impl::set_post_acc_grad_hooks(t, nullptr);
}

void ShardedModel::gather(Entry& e) {
  at::NoGradGuard no_grad;
  ST_CHECK(!on_host_, "a layer gathered while the model is in host memory for writing");
  allocate_storage(e.whole);
  const int64_t padded = e.per * group_.world_size();
  at::Tensor flat = e.whole.detach().view({-1});
  if (padded == e.numel) {
    group_.all_gather(flat, e.shard);
  } else {
    at::Tensor gathered = at::empty({padded}, e.shard.options());
    group_.all_gather(gathered, e.shard);
    flat.copy_(gathered.narrow(0, 0, e.numel));
  }
}

void ShardedModel::acquire(int64_t layer) {
  auto it = whole_.find(layer);
  if (it == whole_.end() || it->second) return;
  for (size_t i : by_layer_[layer]) gather(entries_[i]);
  it->second = true;
}

void ShardedModel::release(int64_t layer) {
  if (layer == kOutside) return;  // kept to the end of the step (release_all)
  auto it = whole_.find(layer);
  if (it == whole_.end() || !it->second) return;
  for (size_t i : by_layer_[layer]) free_storage(entries_[i].whole);
  it->second = false;
}

void ShardedModel::gather_all_to_host(bool keep) {
  release_all();
  at::NoGradGuard no_grad;
  for (Entry& e : entries_) {
    at::Tensor gathered = at::empty({e.per * group_.world_size()}, e.shard.options());
    group_.all_gather(gathered, e.shard);
    if (keep) e.whole.set_data(gathered.narrow(0, 0, e.numel).view(e.whole.sizes()).to(at::kCPU, false, true));
  }
  on_host_ = keep;
}

void ShardedModel::release_all() {
  if (on_host_) {
    // Back to the device, empty, as the constructor left them.
    for (Entry& e : entries_) {
      e.whole.set_data(at::empty(e.whole.sizes(), e.whole.options().device(device_)));
      free_storage(e.whole);
    }
    on_host_ = false;
  }
  for (auto& [layer, whole] : whole_) {
    if (!whole) continue;
    for (size_t i : by_layer_[layer]) free_storage(entries_[i].whole);
    whole = false;
  }
}

void ShardedModel::scatter_gradient(Entry& e, const at::Tensor& gradient) {
  at::NoGradGuard no_grad;
  const int64_t padded = e.per * group_.world_size();
  at::Tensor flat = gradient.defined() ? gradient.reshape({-1}) : at::zeros({e.numel}, e.shard.options());
  if (padded != e.numel) flat = at::cat({flat, at::zeros({padded - e.numel}, flat.options())});
  at::Tensor piece = at::empty({e.per}, flat.options());
  group_.reduce_scatter_sum(piece, flat.contiguous());
  at::Tensor& grad = e.shard.mutable_grad();
  if (grad.defined()) grad.add_(piece);
  else grad = piece;
}

void ShardedModel::reduce_outside_gradients() {
  for (size_t i : by_layer_[kOutside]) {
    Entry& e = entries_[i];
    if (!e.trainable) continue;
    at::Tensor gradient = e.whole.grad();
    e.whole.mutable_grad() = at::Tensor();
    scatter_gradient(e, gradient);
  }
}

NamedTensors ShardedModel::trainable_shards() const {
  NamedTensors out;
  for (const Entry& e : entries_)
    if (e.trainable) out.emplace_back(e.name, e.shard);
  return out;
}

std::vector<bool> ShardedModel::trainable_decay() const {
  std::vector<bool> out;
  for (const Entry& e : entries_)
    if (e.trainable) out.push_back(AdamW::decays(e.name, e.whole.dim()));
  return out;
}

at::Tensor ShardedModel::shard_of(const std::string& name, const at::Tensor& whole) const {
  for (const Entry& e : entries_)
    if (e.name == name) {
      ST_CHECK(whole.numel() == e.numel, "the whole ", name, " has ", whole.numel(), " elements, not ", e.numel);
      return slice_of(whole, e.numel, e.per, group_.rank()).to(e.shard.device());
    }
  fail("the sharded model has no tensor \"", name, "\"");
}

int64_t ShardedModel::shard_elements() const {
  int64_t total = 0;
  for (const Entry& e : entries_) total += e.per;
  return total;
}

int64_t ShardedModel::whole_elements() const {
  int64_t total = 0;
  for (const Entry& e : entries_) total += e.numel;
  return total;
}

}  // namespace st::train
