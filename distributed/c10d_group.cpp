#include "distributed/c10d_group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <utility>

#include "common/error.h"
#include "distributed/nccl_backend.h"

namespace st::distributed {
namespace {

// c10d's message without the C++ backtrace it appends.
std::string brief(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find("\nException raised from"));
}

c10::intrusive_ptr<c10d::Store> rendezvous(const LaunchEnv& env, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = env.master_port;
  // torchrun's agent serves the store its workers meet at; under srun (or
  // any launcher without one) rank 0 serves it.
  options.isServer = env.rank == 0 && !env.agent_store;
  options.numWorkers = static_cast<size_t>(env.world_size);
  // Every process counts itself in and waits for the others, except under
  // torchrun, whose agent serves the store (and counts its own keys).
  options.waitWorkers = !env.agent_store;
  options.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    fail("rank ", env.rank, " of ", env.world_size, ": the rendezvous at ", env.master_addr, ":", env.master_port,
         " (", env.launcher, ") did not complete within ", timeout.count() / 1000,
         " s (distributed.timeout_s): a process did not arrive, or the address is wrong.\n  c10d: ", brief(e));
  }
  // Keys of our own, apart from the agent's; a restarted attempt of
  // torchrun (--max-restarts) meets under a new prefix.
  const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
  return c10::make_intrusive<c10d::PrefixStore>(cat("salamandra-tune/", attempt ? attempt : "0"), store);
}

class C10dGroup;

// Tensors summed over the processes in buckets of about bucket_bytes:
// consecutive tensors of one dtype and device, taken from the last (whose
// gradients backward makes first; the late ones, made final after
// backward, go last). A bucket is sent once all its tensors
// are ready, and only after every bucket before it, so that every process
// issues the same collectives in the same order. A tensor of a bucket's
// size or more goes alone and is summed in place; smaller ones are copied
// into one buffer per bucket and copied back at finish().
class BucketSync : public train::GradientSync {
 public:
  BucketSync(C10dGroup& group, std::vector<at::Tensor> tensors, int64_t bucket_bytes, const std::vector<size_t>& late);
  void ready(size_t i) override;
  size_t finish() override;

 private:
  struct Bucket {
    std::vector<size_t> members;
    size_t waiting = 0;  // members not ready yet
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void send_ready_buckets();

  C10dGroup& group_;
  std::vector<at::Tensor> tensors_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  size_t next_ = 0;  // the first bucket not sent
};

class C10dGroup : public train::ProcessGroup {
 public:
  C10dGroup(const LaunchEnv& env, const GroupOptions& options)
      : env_(env), options_(options), store_(rendezvous(env, options.timeout)) {
    if (options.backend == "nccl") {
      backend_ = make_nccl_backend(store_, env.rank, env.world_size, env.local_rank, options.timeout);
      device_ = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
    } else if (options.backend == "gloo") {
      auto gloo = c10d::ProcessGroupGloo::Options::create();
      // As torch.distributed picks it: the interface GLOO_SOCKET_IFNAME
      // names, else the address this host's name resolves to.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      gloo->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                                : c10d::ProcessGroupGloo::createDefaultDevice());
      gloo->timeout = options.timeout;
      try {
        backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env.rank, env.world_size, gloo);
      } catch (const std::exception& e) {
        fail("rank ", env.rank, ": Gloo could not connect the ", env.world_size, " processes: ", brief(e));
      }
    } else {
      fail("distributed.backend \"", options.backend, "\": gloo or nccl");
    }
  }

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  bool collective() const override { return true; }
  std::string description() const override {
    return cat(env_.world_size, env_.world_size == 1 ? " process" : " processes", " (", options_.backend,
               ", launched by ", env_.launcher, ")");
  }

  void all_reduce_sum(const std::vector<at::Tensor>& tensors) override {
    BucketSync(*this, tensors, options_.bucket_bytes, {}).finish();
  }

  std::unique_ptr<train::GradientSync> start_gradient_sync(std::vector<at::Tensor> accumulators,
                                                           const std::vector<size_t>& late) override {
    return std::make_unique<BucketSync>(*this, std::move(accumulators), options_.bucket_bytes, late);
  }

  void all_gather(const at::Tensor& whole, const at::Tensor& shard) override {
    at::Tensor output = whole, input = shard;
    wait(backend_->_allgather_base(output, input), "the gather of a sharded weight");
  }

  void reduce_scatter_sum(const at::Tensor& shard, const at::Tensor& whole) override {
    at::Tensor output = shard, input = whole;
    wait(backend_->_reduce_scatter_base(output, input), "the reduce-scatter of a sharded gradient");
  }

  std::vector<double> sum_values(std::vector<double> values) override {
    if (values.empty()) return values;
    at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(device_);
    reduce(t, "a sum of the step's values");
    t = t.cpu();
    const double* data = t.data_ptr<double>();
    return std::vector<double>(data, data + values.size());
  }

  bool all_true(bool value) override { return sum_values({value ? 0.0 : 1.0})[0] == 0.0; }

  // Through all-reduces only (which both backends have): the lengths, then
  // the bytes, each process filling its own slot of a zeroed buffer.
  std::vector<std::string> all_gather_strings(const std::string& text) override {
    std::vector<double> lengths(static_cast<size_t>(env_.world_size), 0.0);
    lengths[static_cast<size_t>(env_.rank)] = static_cast<double>(text.size());
    lengths = sum_values(lengths);
    int64_t longest = 0;
    for (double l : lengths) longest = std::max(longest, static_cast<int64_t>(l));
    at::Tensor bytes = at::zeros({env_.world_size, std::max<int64_t>(1, longest)}, at::kInt);
    auto mine = bytes.accessor<int, 2>()[env_.rank];
    for (size_t i = 0; i < text.size(); ++i)
      mine[static_cast<int64_t>(i)] = static_cast<int>(static_cast<unsigned char>(text[i]));
    bytes = bytes.to(device_);
    reduce(bytes, "an exchange of names");
    bytes = bytes.cpu();
    const auto all = bytes.accessor<int, 2>();
    std::vector<std::string> out;
    for (int r = 0; r < env_.world_size; ++r) {
      std::string s;
      for (int64_t i = 0; i < static_cast<int64_t>(lengths[static_cast<size_t>(r)]); ++i)
        s.push_back(static_cast<char>(all[r][i]));
      out.push_back(std::move(s));
    }
    return out;
  }

  void barrier() override { sum_values({0.0}); }

  void announce(const std::string& what) override { store_->set(cat("ready/", what), std::string("1")); }

  void wait_for_rank0(const std::string& what) override {
    const std::string key = cat("ready/", what);
    while (true) {
      bool ready = false;
      try {
        ready = store_->check({key});
      } catch (const std::exception& e) {
        fail("rank ", env_.rank, ": the rendezvous store went away while waiting for rank 0's ", what,
             " (rank 0 stopped?).\n  c10d: ", brief(e));
      }
      if (ready) return;
      if (const std::string failure = peer_failure(); !failure.empty())
        fail("rank ", env_.rank, " stops: ", failure);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void report_failure(const std::string& message) override {
    try {
      store_->set(cat("failed/", env_.rank), message);
    } catch (...) {
      // The store's server may be gone with its process: nothing to tell.
    }
  }

  std::string peer_failure() override {
    try {
      for (int r = 0; r < env_.world_size; ++r) {
        if (r == env_.rank) continue;
        const std::string key = cat("failed/", r);
        if (store_->check({key})) {
          const std::vector<uint8_t> message = store_->get(key);
          return cat("rank ", r, " failed: ", std::string(message.begin(), message.end()));
        }
      }
    } catch (...) {
      return "";
    }
    return "";
  }

 public:
  // For BucketSync.
  c10::intrusive_ptr<c10d::Work> start_all_reduce(at::Tensor& t) {
    std::vector<at::Tensor> one{t};
    return backend_->allreduce(one);
  }

  // A collective that fails (a peer died, or did not come within the
  // timeout) names the rank that reported a failure, when one did.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait(options_.timeout);
    } catch (const std::exception& e) {
      const std::string failure = peer_failure();
      fail("rank ", env_.rank, " of ", env_.world_size, ": ", what, " failed",
           failure.empty() ? cat(" (another process stopped, or did not arrive within distributed.timeout_s = ",
                                 options_.timeout.count() / 1000, ")")
                           : cat(": ", failure),
           ".\n  c10d: ", brief(e));
    }
  }

 private:
  void reduce(at::Tensor& t, const char* what) {
    std::vector<at::Tensor> one{t};
    wait(backend_->allreduce(one), what);
  }

  LaunchEnv env_;
  GroupOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  at::Device device_ = at::kCPU;
};


BucketSync::BucketSync(C10dGroup& group, std::vector<at::Tensor> tensors, int64_t bucket_bytes,
                       const std::vector<size_t>& late)
    : group_(group), tensors_(std::move(tensors)), bucket_of_(tensors_.size()) {
  // From the last tensor to the first, the late ones after all the others.
  std::vector<size_t> order;
  for (size_t k = tensors_.size(); k-- > 0;)
    if (std::find(late.begin(), late.end(), k) == late.end()) order.push_back(k);
  for (size_t k : late) order.push_back(k);
  int64_t open_bytes = 0;
  for (size_t k : order) {
    const at::Tensor& t = tensors_[k];
    const int64_t bytes = static_cast<int64_t>(t.nbytes());
    const bool alone = bytes >= bucket_bytes || !t.is_contiguous();
    bool fits = !buckets_.empty() && !alone && open_bytes + bytes <= bucket_bytes;
    if (fits) {
      const at::Tensor& first = tensors_[buckets_.back().members[0]];
      fits = first.scalar_type() == t.scalar_type() && first.device() == t.device() &&
             static_cast<int64_t>(first.nbytes()) < bucket_bytes;
    }
    if (!fits) {
      buckets_.emplace_back();
      open_bytes = 0;
    }
    buckets_.back().members.push_back(k);
    ++buckets_.back().waiting;
    bucket_of_[k] = buckets_.size() - 1;
    open_bytes += bytes;
  }
}

void BucketSync::ready(size_t i) {
  Bucket& b = buckets_.at(bucket_of_.at(i));
  ST_CHECK(b.waiting > 0 && bucket_of_[i] >= next_, "gradient ", i, " made ready twice");
  --b.waiting;
  send_ready_buckets();
}

void BucketSync::send_ready_buckets() {
  while (next_ < buckets_.size() && buckets_[next_].waiting == 0) {
    Bucket& b = buckets_[next_++];
    if (b.members.size() == 1 && tensors_[b.members[0]].is_contiguous()) {
      b.flat = tensors_[b.members[0]];
    } else {
      std::vector<at::Tensor> flats;
      for (size_t k : b.members) flats.push_back(tensors_[k].reshape({-1}));
      b.flat = at::cat(flats);
    }
    b.work = group_.start_all_reduce(b.flat);
  }
}

size_t BucketSync::finish() {
  const size_t sent_early = next_;
  for (Bucket& b : buckets_) b.waiting = 0;
  send_ready_buckets();
  for (Bucket& b : buckets_) {
    group_.wait(b.work, "the gradients' all-reduce");
    if (b.flat.data_ptr() == tensors_[b.members[0]].data_ptr()) continue;  // summed in place
    int64_t at = 0;
    for (size_t k : b.members) {
      const at::Tensor& t = tensors_[k];
      t.copy_(b.flat.narrow(0, at, t.numel()).view(t.sizes()));
      at += t.numel();
    }
  }
  return sent_early;
}

}  // namespace

std::unique_ptr<train::ProcessGroup> join_process_group(const LaunchEnv& env, const GroupOptions& options) {
  return std::make_unique<C10dGroup>(env, options);
}

}  // namespace st::distributed
