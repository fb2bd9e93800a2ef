// The opt-in switch for the fused CUDA kernels. A kernel that has never
// passed its GPU tests stays off by default; the model uses it on CUDA only
// when the environment asks:
//   ST_FUSED_KERNELS=1      every fused kernel
//   ST_FUSED_<OP>=1 / =0    one kernel on / off, overriding ST_FUSED_KERNELS
//                           (ST_FUSED_RMS_NORM, ST_FUSED_SWIGLU, ST_FUSED_ROTARY)
// CPU runs always take the ATen reference.
#pragma once

namespace st {

/// True when this build has the CUDA kernels and the environment enables the
/// op named by `per_op_variable` (read on every call; cache it at the caller).
bool fused_kernel_enabled(const char* per_op_variable);

}  // namespace st
