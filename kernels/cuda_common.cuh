// Device helpers shared by the fused kernels (rms_norm.cu, swiglu.cu,
// rotary.cu): fp32 <-> storage dtype conversion, packed loads/stores of N
// contiguous elements (one 16-byte transaction when N * sizeof(T) == 16),
// and a block-wide fp32 sum. CUDA-only; no torch types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::kernels::detail {

template <typename T>
__device__ __forceinline__ float to_float(T v) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_float(float v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16(v); }

/// N contiguous elements moved as one aligned unit (alignment = whole pack).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

/// Loads N elements at p (p must be aligned to the pack when N > 1) as fp32.
template <typename T, int N>
__device__ __forceinline__ void load(const T* p, float (&out)[N]) {
  const Pack<T, N> pack = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = to_float(pack.v[j]);
}

/// The pack at p as stored (no conversion): kernels that keep rows in
/// registers hold them this way, 16 bytes per pack whatever the dtype, so a
/// bf16 row costs half the registers of its fp32 copy.
template <typename T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}

/// An empty asm that claims to change the pack's registers: values derived
/// from the pack before this point cannot be reused after it, so a kernel
/// that holds packs across a barrier keeps them as stored and converts them
/// again, instead of keeping their wider fp32 conversions alive.
template <typename T, int N>
__device__ __forceinline__ void keep_as_stored(Pack<T, N>& pack) {
  if constexpr (sizeof(Pack<T, N>) % 4 == 0) {
    auto* words = reinterpret_cast<uint32_t*>(&pack);
#pragma unroll
    for (size_t k = 0; k < sizeof(Pack<T, N>) / 4; ++k) asm volatile("" : "+r"(words[k]));
  } else {
    static_assert(sizeof(Pack<T, N>) == 2, "packs of 32-bit words or one 16-bit element");
    asm volatile("" : "+h"(*reinterpret_cast<uint16_t*>(&pack)));
  }
}

/// Rounds N fp32 values to T and stores them at p as one unit.
template <typename T, int N>
__device__ __forceinline__ void store(T* p, const float (&in)[N]) {
  Pack<T, N> pack;
#pragma unroll
  for (int j = 0; j < N; ++j) pack.v[j] = from_float<T>(in[j]);
  *reinterpret_cast<Pack<T, N>*>(p) = pack;
}

/// Sum of `value` over the block (blockDim.x a multiple of 32, at most 1024);
/// every thread gets the result. `scratch` holds 32 floats of shared memory.
/// Ends with a barrier, so the scratch may be reused right after.
__device__ __forceinline__ float block_sum(float value, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  value = lane < warps ? scratch[lane] : 0.f;
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();
  return value;
}

/// True when p is aligned to `bytes`.
inline bool aligned(const void* p, int bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace st::kernels::detail
