// Which process of a multi-process run this is, read from the launcher's
// environment as PyTorch users launch: torchrun's contract (RANK,
// LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or, where torchrun's
// variables are absent, SLURM's srun (SLURM_PROCID, SLURM_LOCALID,
// SLURM_NTASKS, the step's node list). No torch here: it is read before
// anything is set up, and its rules are unit-tested on plain maps.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace st::distributed {

struct LaunchEnv {
  int rank = 0, local_rank = 0, world_size = 1;
  std::string master_addr;
  uint16_t master_port = 0;
  std::string launcher;  // "torchrun" (or any launcher of its contract), "srun", "" (one process)
  /// torchrun's agent holds the rendezvous store (TORCHELASTIC_USE_AGENT_STORE):
  /// rank 0 then connects to it instead of serving one.
  bool agent_store = false;
};

/// Looks a variable up; nullopt when unset.
using Getenv = std::function<std::optional<std::string>(const std::string&)>;

/// The process's launch, from `getenv` (the real environment by default).
/// One process when neither WORLD_SIZE nor SLURM_NTASKS > 1 is set. An
/// incomplete contract is an st::Error naming each missing or bad variable.
LaunchEnv read_launch_env(const Getenv& getenv = {});

/// The first host of a SLURM node list ("gpu[07-09,12],cpu1" -> "gpu07").
std::string first_slurm_host(const std::string& nodelist);

}  // namespace st::distributed
