#include "distributed/launch_env.h"

#include <cstdlib>
#include <vector>

#include "common/error.h"

namespace st::distributed {
namespace {

std::optional<std::string> real_getenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

// A whole non-negative integer, or nullopt.
std::optional<long long> whole_number(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  return std::atoll(text.c_str());
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets.
  size_t end = 0;
  int depth = 0;
  for (; end < nodelist.size(); ++end) {
    if (nodelist[end] == '[') ++depth;
    if (nodelist[end] == ']') --depth;
    if (nodelist[end] == ',' && depth == 0) break;
  }
  const std::string entry = nodelist.substr(0, end);
  const size_t open = entry.find('[');
  if (open == std::string::npos) return entry;
  const size_t close = entry.find(']', open);
  if (close == std::string::npos) fail("SLURM node list \"", nodelist, "\": an unclosed [");
  // The first number of the bracket's ranges, as written (zero padding kept).
  const std::string ranges = entry.substr(open + 1, close - open - 1);
  const size_t stop = ranges.find_first_of("-,");
  return entry.substr(0, open) + ranges.substr(0, stop) + entry.substr(close + 1);
}

LaunchEnv read_launch_env(const Getenv& getenv_in) {
  const Getenv getenv = getenv_in ? getenv_in : Getenv(real_getenv);
  LaunchEnv env;
  std::vector<std::string> problems;
  auto number = [&](const std::string& name, long long max, bool required) -> std::optional<long long> {
    const auto text = getenv(name);
    if (!text) {
      if (required) problems.push_back(cat(name, " is not set"));
      return std::nullopt;
    }
    const auto value = whole_number(*text);
    if (!value || *value > max) {
      problems.push_back(cat(name, "=\"", *text, "\" is not a whole number up to ", max));
      return std::nullopt;
    }
    return value;
  };

  const bool torchrun = getenv("WORLD_SIZE").has_value();
  const auto slurm_tasks = torchrun ? std::nullopt : number("SLURM_NTASKS", 1 << 20, false);
  if (!torchrun && (!slurm_tasks || *slurm_tasks <= 1)) return env;  // one process

  if (torchrun) {
    env.launcher = "torchrun";
    env.world_size = static_cast<int>(number("WORLD_SIZE", 1 << 20, true).value_or(1));
    env.rank = static_cast<int>(number("RANK", 1 << 20, true).value_or(0));
    env.local_rank = static_cast<int>(number("LOCAL_RANK", 1 << 20, true).value_or(0));
    env.agent_store = getenv("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  } else {
    env.launcher = "srun";
    env.world_size = static_cast<int>(*slurm_tasks);
    env.rank = static_cast<int>(number("SLURM_PROCID", 1 << 20, true).value_or(0));
    env.local_rank = static_cast<int>(number("SLURM_LOCALID", 1 << 20, true).value_or(0));
  }
  if (env.world_size < 1) problems.push_back("WORLD_SIZE must be at least 1");
  if (env.rank >= env.world_size)
    problems.push_back(cat("the rank ", env.rank, " is not below the world size ", env.world_size));

  if (const auto addr = getenv("MASTER_ADDR"); addr && !addr->empty()) {
    env.master_addr = *addr;
  } else if (!torchrun) {
    // srun: the job step's first node serves the rendezvous.
    const auto nodes = getenv("SLURM_STEP_NODELIST") ? getenv("SLURM_STEP_NODELIST") : getenv("SLURM_JOB_NODELIST");
    if (nodes && !nodes->empty()) env.master_addr = first_slurm_host(*nodes);
    else problems.push_back("MASTER_ADDR is not set, nor SLURM_STEP_NODELIST / SLURM_JOB_NODELIST to derive it from");
  } else {
    problems.push_back("MASTER_ADDR is not set");
  }
  if (getenv("MASTER_PORT")) {
    env.master_port = static_cast<uint16_t>(number("MASTER_PORT", 65535, true).value_or(0));
  } else if (!torchrun) {
    // srun: a port from the job id, so that jobs sharing a node do not meet.
    const auto job = number("SLURM_JOB_ID", 1ll << 40, false);
    if (job) env.master_port = static_cast<uint16_t>(20000 + *job % 20000);
    else problems.push_back("MASTER_PORT is not set, nor SLURM_JOB_ID to derive it from");
  } else {
    problems.push_back("MASTER_PORT is not set");
  }

  if (!problems.empty()) {
    std::string list;
    for (const std::string& p : problems) list += "\n  " + p;
    fail("this process was started as one of several (", env.launcher == "srun" ? "SLURM_NTASKS" : "WORLD_SIZE",
         " is set), but the launch contract is incomplete:", list,
         "\nStart it with torchrun (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or srun.");
  }
  return env;
}

}  // namespace st::distributed
