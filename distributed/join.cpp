#include "distributed/join.h"

#include <ATen/Context.h>

#include <cstdio>

#include "common/error.h"
#include "distributed/c10d_group.h"
#include "distributed/launch_env.h"

namespace st::distributed {

std::unique_ptr<train::ProcessGroup> process_group_for(const train::RunConfig& config, const std::string& command) {
  const LaunchEnv env = read_launch_env();
  if (env.launcher.empty()) return std::make_unique<train::SingleProcess>();
  const train::DistributedConfig& d = config.distributed;
  const bool cuda = config.device == "cuda" || (config.device == "auto" && at::hasCUDA());
  std::string backend = d.backend == "auto" ? (cuda ? "nccl" : "gloo") : d.backend;
  if (backend == "nccl" && !cuda)
    fail("distributed.backend = \"nccl\" needs CUDA tensors, but this run trains on the CPU (model.device ",
         config.device, "); use gloo");
  if (backend == "gloo" && cuda)
    fail("distributed.backend = \"gloo\" with model.device on CUDA: this version all-reduces CUDA gradients with ",
         "nccl only");
  GroupOptions options;
  options.backend = backend;
  options.bucket_bytes = d.bucket_mb << 20;
  options.timeout = std::chrono::seconds(d.timeout_s);
  auto group = join_process_group(env, options);
  if (group->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    fail("rank ", group->rank(), ": cannot send stdout to /dev/null");
  std::printf("%s: %s\n", command.c_str(), group->description().c_str());
  return group;
}

}  // namespace st::distributed
