// What `salamandra-tune --version` prints: our version, the LibTorch it was
// built against, and whether the CUDA kernels were compiled in and a GPU is
// visible now (the facts a bug report needs).
#pragma once

#include <string>

namespace st::cli {

/// "salamandra-tune 0.1.0 (LibTorch 2.11.0; CUDA kernels: compiled, no GPU visible)"
std::string version_text();

}  // namespace st::cli
