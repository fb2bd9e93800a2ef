// --dtype / --device parsing shared by the commands that run a model.
#include <ATen/Context.h>

#include "common/error.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace st::cli {

at::TensorOptions tensor_options(const std::string& dtype, const std::string& device) {
  at::TensorOptions options;
  if (dtype == "float32") options = options.dtype(at::kFloat);
  else if (dtype == "bfloat16") options = options.dtype(at::kBFloat16);
  else throw UsageError(cat("--dtype must be float32 or bfloat16, got \"", dtype, "\""));
  if (device == "cpu" || (device == "auto" && !at::hasCUDA())) options = options.device(at::kCPU);
  else if (device == "cuda" || device == "auto") {
    if (!at::hasCUDA()) fail("--device cuda: no CUDA device is available");
    options = options.device(at::kCUDA);
  } else {
    throw UsageError(cat("--device must be auto, cpu or cuda, got \"", device, "\""));
  }
  return options;
}

void ComputeFlags::add_to(Args& args) {
  args.option("dtype", "TYPE", "compute dtype: float32 or bfloat16", &dtype);
  args.option("device", "DEV", "auto, cpu or cuda", &device);
}

}  // namespace st::cli
