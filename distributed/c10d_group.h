// The processes of a multi-process run as PyTorch's c10d joins them: a
// rendezvous through a TCPStore (served by rank 0, or by torchrun's agent),
// then a Gloo (CPU tensors) or NCCL (CUDA tensors) backend behind
// train::ProcessGroup. We add no communication of our own: the collectives
// are c10d's; the store also carries a failing rank's message to the others.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "distributed/launch_env.h"
#include "train/process_group.h"

namespace st::distributed {

struct GroupOptions {
  std::string backend;         // "gloo" or "nccl"
  int64_t bucket_bytes = 0;    // gradients are all-reduced in buckets of about this size
  std::chrono::milliseconds timeout{0};  // rendezvous and every collective
};

/// Joins the run's processes (blocks until all arrived, or throws st::Error
/// naming the rendezvous address and what is missing after the timeout).
std::unique_ptr<train::ProcessGroup> join_process_group(const LaunchEnv& env, const GroupOptions& options);

}  // namespace st::distributed
