#include "model/kernels/fused_switch.h"

#include <cstdlib>
#include <cstring>

namespace st {

bool fused_kernel_enabled(const char* per_op_variable) {
#ifdef ST_WITH_CUDA
  if (const char* op = std::getenv(per_op_variable); op && *op) return std::strcmp(op, "1") == 0;
  const char* all = std::getenv("ST_FUSED_KERNELS");
  return all && std::strcmp(all, "1") == 0;
#else
  (void)per_op_variable;
  return false;
#endif
}

}  // namespace st
