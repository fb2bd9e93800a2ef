#include "cli/version.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include "common/error.h"

namespace st::cli {

std::string version_text() {
#ifdef ST_WITH_CUDA
  const char* kernels = "compiled";
#else
  const char* kernels = "not compiled";
#endif
  const bool gpu = at::hasCUDA();
  return cat("salamandra-tune ", ST_VERSION, " (LibTorch ", TORCH_VERSION, "; CUDA kernels: ", kernels, ", ",
             gpu ? "a GPU is visible" : "no GPU visible", ")");
}

}  // namespace st::cli
