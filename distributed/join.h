// The process group a training command runs in: one process unless the
// environment says it was launched as several (launch_env.h); then the
// [distributed] keys pick the mode and backend, and c10d joins them.
#pragma once

#include <memory>
#include <string>

#include "train/process_group.h"
#include "train/run_config.h"

namespace st::distributed {

/// SingleProcess, or the c10d group of this launch (ddp and fsdp alike:
/// the mode decides how the run uses it, train/run.h).
/// Ranks other than 0 send their stdout to /dev/null: rank 0 alone logs.
std::unique_ptr<train::ProcessGroup> process_group_for(const train::RunConfig& config, const std::string& command);

}  // namespace st::distributed
