// The switch of each fused CUDA kernel. A kernel that has never passed its
// GPU tests is constructed default-off; once verified on a GPU
// (scripts/gpu_check.sh), default-on. The environment overrides either way:
//   ST_FUSED_KERNELS=1 / =0  every fused kernel on / off
//   ST_FUSED_<OP>=1 / =0     one kernel on / off, overriding ST_FUSED_KERNELS
//                            (ST_FUSED_RMS_NORM, ST_FUSED_SWIGLU, ST_FUSED_ROTARY,
//                            ST_FUSED_CROSS_ENTROPY)
// CPU runs always take the ATen reference.
#pragma once

#include <optional>

namespace st {

class FusedSwitch {
 public:
  /// Reads the environment once: `per_op_variable`, then ST_FUSED_KERNELS, then `default_on`.
  /// A value other than 1 or 0 is an st::Error naming the variable.
  FusedSwitch(const char* per_op_variable, bool default_on);
  /// The environment's answer unless override_fused_kernels() is in force;
  /// always false in a build without the CUDA kernels.
  bool enabled() const;

 private:
  bool from_environment_;
};

/// Forces every fused kernel on (true) or off (false) in this process, or
/// returns them to their switches (nullopt). For benchmarks and tests that
/// compare both paths in one run.
void override_fused_kernels(std::optional<bool> state);

/// override_fused_kernels(state) for a scope; the switches return on exit,
/// also when an exception leaves the scope.
class ScopedFusedKernels {
 public:
  explicit ScopedFusedKernels(bool state) { override_fused_kernels(state); }
  ~ScopedFusedKernels() { override_fused_kernels(std::nullopt); }
  ScopedFusedKernels(const ScopedFusedKernels&) = delete;
  ScopedFusedKernels& operator=(const ScopedFusedKernels&) = delete;
};

}  // namespace st
