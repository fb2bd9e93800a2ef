// The launch contract read from torchrun's and srun's variables, on plain
// maps: what is derived, and what an incomplete contract says.
#include <gtest/gtest.h>

#include <map>

#include "common/error.h"
#include "distributed/launch_env.h"

namespace st::distributed {
namespace {

Getenv from(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    read_launch_env(from(vars));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, OneProcessWithoutALauncher) {
  const LaunchEnv env = read_launch_env(from({{"HOME", "/root"}}));
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.launcher, "");
  // srun with one task is one process too.
  EXPECT_EQ(read_launch_env(from({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}})).launcher, "");
}

TEST(LaunchEnv, TorchrunContract) {
  const LaunchEnv env = read_launch_env(from({{"WORLD_SIZE", "4"},
                                              {"RANK", "3"},
                                              {"LOCAL_RANK", "1"},
                                              {"MASTER_ADDR", "node7"},
                                              {"MASTER_PORT", "29500"},
                                              {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.agent_store);
  // torchrun's variables win over SLURM's (torchrun inside an allocation).
  EXPECT_EQ(read_launch_env(from({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "a"},
                                  {"MASTER_PORT", "1"}, {"SLURM_NTASKS", "8"}}))
                .launcher,
            "torchrun");
}

TEST(LaunchEnv, SrunDerivesTheContract) {
  const LaunchEnv env = read_launch_env(from({{"SLURM_NTASKS", "16"},
                                              {"SLURM_PROCID", "9"},
                                              {"SLURM_LOCALID", "1"},
                                              {"SLURM_JOB_ID", "123456"},
                                              {"SLURM_STEP_NODELIST", "gpu[007-009,012],cpu1"}}));
  EXPECT_EQ(env.launcher, "srun");
  EXPECT_EQ(env.world_size, 16);
  EXPECT_EQ(env.rank, 9);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "gpu007");
  EXPECT_EQ(env.master_port, 20000 + 123456 % 20000);
  EXPECT_FALSE(env.agent_store);
  // MASTER_ADDR / MASTER_PORT given win.
  const LaunchEnv given = read_launch_env(from({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"},
                                                {"MASTER_ADDR", "head"}, {"MASTER_PORT", "12345"}}));
  EXPECT_EQ(given.master_addr, "head");
  EXPECT_EQ(given.master_port, 12345);
}

TEST(LaunchEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("gpu[07-09]"), "gpu07");
  EXPECT_EQ(first_slurm_host("gpu[3,5-6]-ib"), "gpu3-ib");
  EXPECT_EQ(first_slurm_host("a[1-2],b[3-4]"), "a1");
  EXPECT_THROW(first_slurm_host("gpu[1-2"), Error);
}

TEST(LaunchEnv, IncompleteContractNamesEveryProblem) {
  const std::string missing = error_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}});
  EXPECT_NE(missing.find("LOCAL_RANK is not set"), std::string::npos) << missing;
  EXPECT_NE(missing.find("MASTER_ADDR is not set"), std::string::npos) << missing;
  EXPECT_NE(missing.find("MASTER_PORT is not set"), std::string::npos) << missing;
  const std::string bad = error_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"LOCAL_RANK", "x"}, {"MASTER_ADDR", "a"},
                                    {"MASTER_PORT", "70000"}});
  EXPECT_NE(bad.find("rank 2 is not below the world size 2"), std::string::npos) << bad;
  EXPECT_NE(bad.find("LOCAL_RANK=\"x\""), std::string::npos) << bad;
  EXPECT_NE(bad.find("MASTER_PORT=\"70000\""), std::string::npos) << bad;
  const std::string srun = error_of({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}});
  EXPECT_NE(srun.find("SLURM_STEP_NODELIST"), std::string::npos) << srun;
  EXPECT_NE(srun.find("SLURM_JOB_ID"), std::string::npos) << srun;
}

}  // namespace
}  // namespace st::distributed
