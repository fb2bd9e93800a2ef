// Plain types shared by the fused-kernel launchers (no torch, no CUDA headers),
// so the .cu files and the op .cpp files agree on them.
#pragma once

namespace st::kernels {

/// Storage dtype of a kernel's tensors; arithmetic is always fp32.
enum class KernelDType { kFloat32, kBFloat16 };

}  // namespace st::kernels
