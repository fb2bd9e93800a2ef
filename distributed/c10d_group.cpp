#include "distributed/c10d_group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

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
  std::string description() const override {
    return cat(env_.world_size, " processes (", options_.backend, ", launched by ", env_.launcher, ")");
  }

  // In buckets of about bucket_bytes: tensors of one dtype and device are
  // flattened into one buffer per bucket, every bucket's all-reduce is
  // started, then each is waited for and copied back. A tensor of a bucket's
  // size or more goes alone, in place.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors) override {
    struct Bucket {
      std::vector<at::Tensor> members;
      at::Tensor flat;
      c10::intrusive_ptr<c10d::Work> work;
    };
    std::vector<Bucket> buckets;
    Bucket open;
    int64_t open_bytes = 0;
    auto start = [&](Bucket& b) {
      if (b.members.empty()) return;
      if (b.members.size() == 1 && b.members[0].is_contiguous()) {
        b.flat = b.members[0];
      } else {
        std::vector<at::Tensor> flats;
        for (const at::Tensor& t : b.members) flats.push_back(t.reshape({-1}));
        b.flat = at::cat(flats);
      }
      std::vector<at::Tensor> one{b.flat};
      b.work = backend_->allreduce(one);
      buckets.push_back(std::move(b));
      b = Bucket();
    };
    for (const at::Tensor& t : tensors) {
      if (!open.members.empty() && (open.members[0].scalar_type() != t.scalar_type() ||
                                    open.members[0].device() != t.device())) {
        start(open);
        open_bytes = 0;
      }
      open.members.push_back(t);
      open_bytes += static_cast<int64_t>(t.nbytes());
      if (open_bytes >= options_.bucket_bytes) {
        start(open);
        open_bytes = 0;
      }
    }
    start(open);
    for (Bucket& b : buckets) {
      wait(b.work, "the gradients' all-reduce");
      if (b.flat.data_ptr() == b.members[0].data_ptr() && b.members.size() == 1) continue;
      int64_t at = 0;
      for (const at::Tensor& t : b.members) {
        t.copy_(b.flat.narrow(0, at, t.numel()).view(t.sizes()));
        at += t.numel();
      }
    }
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
    for (size_t i = 0; i < text.size(); ++i)
      bytes[env_.rank][static_cast<int64_t>(i)] = static_cast<int>(static_cast<unsigned char>(text[i]));
    bytes = bytes.to(device_);
    reduce(bytes, "an exchange of names");
    bytes = bytes.cpu();
    std::vector<std::string> out;
    for (int r = 0; r < env_.world_size; ++r) {
      std::string s;
      for (int64_t i = 0; i < static_cast<int64_t>(lengths[static_cast<size_t>(r)]); ++i)
        s.push_back(static_cast<char>(bytes[r][i].item<int>()));
      out.push_back(std::move(s));
    }
    return out;
  }

  void barrier() override { sum_values({0.0}); }

  void announce(const std::string& what) override { store_->set(cat("ready/", what), std::string("1")); }

  void wait_for_rank0(const std::string& what) override {
    const std::string key = cat("ready/", what);
    while (!store_->check({key})) {
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

 private:
  void reduce(at::Tensor& t, const char* what) {
    std::vector<at::Tensor> one{t};
    wait(backend_->allreduce(one), what);
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

  LaunchEnv env_;
  GroupOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  at::Device device_ = at::kCPU;
};

}  // namespace

std::unique_ptr<train::ProcessGroup> join_process_group(const LaunchEnv& env, const GroupOptions& options) {
  return std::make_unique<C10dGroup>(env, options);
}

}  // namespace st::distributed
