// The subcommands of salamandra-tune, one file each; main() dispatches.
// Each takes the arguments after its name and returns the exit code.
#pragma once

#include <c10/core/TensorOptions.h>

#include <string>

namespace st::cli {

int run_init(int argc, char** argv);
int run_build_tokenizer(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_score(int argc, char** argv);
int run_prepare(int argc, char** argv);
int run_inspect_data(int argc, char** argv);
int run_make_tasks(int argc, char** argv);
int run_eval_tasks(int argc, char** argv);
int run_sft(int argc, char** argv);
int run_dpo(int argc, char** argv);
int run_export(int argc, char** argv);
int run_merge(int argc, char** argv);

/// Tensor options from --dtype (float32|bfloat16) and --device (auto|cpu|cuda).
at::TensorOptions tensor_options(const std::string& dtype, const std::string& device);

class Args;

/// --dtype and --device of the commands that run a model (generate, score, eval-tasks).
struct ComputeFlags {
  std::string dtype = "float32", device = "auto";
  /// Declares both options on `args`, writing into this.
  void add_to(Args& args);
  at::TensorOptions tensor_options() const { return cli::tensor_options(dtype, device); }
};

}  // namespace st::cli
