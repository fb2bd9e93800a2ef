// Fused SwiGLU, forward and backward: purely elementwise and memory bound,
// so the only goals are one read of each input, one write of each output and
// wide transactions. A grid-stride loop moves 16-byte packs; the tail (or
// everything, when a pointer is not 16-byte aligned) goes one element at a
// time. Arithmetic is fp32 with a single rounding per output, which is at
// least as accurate as the reference's silu-then-multiply in the storage
// dtype. The backward saves memory too: only gate and up are kept for it
// (the reference also keeps silu(gate)).
// On by default on CUDA since it passed its GPU tests; ST_FUSED_SWIGLU=0 turns it off.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_common.cuh"
#include "kernels/swiglu.h"

namespace st::kernels {
namespace {

using detail::load;
using detail::store;

// ---------------------------------------------------------------- kernels

__device__ __forceinline__ float sigmoid(float g) { return 1.f / (1.f + expf(-g)); }

// Elements [begin, end) of the array; N elements per step, starting aligned.
template <typename T, int N>
__global__ void swiglu_forward_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                      int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * N;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N; i < n; i += stride) {
    if (i + N <= n) {
      float g[N], u[N], o[N];
      load<T, N>(gate + i, g);
      load<T, N>(up + i, u);
#pragma unroll
      for (int j = 0; j < N; ++j) o[j] = g[j] * sigmoid(g[j]) * u[j];
      store<T, N>(out + i, o);
    } else {
      for (int64_t k = i; k < n; ++k) {  // the ragged tail, fewer than N elements
        float g[1], u[1], o[1];
        load<T, 1>(gate + k, g);
        load<T, 1>(up + k, u);
        o[0] = g[0] * sigmoid(g[0]) * u[0];
        store<T, 1>(out + k, o);
      }
    }
  }
}

template <typename T, int N>
__global__ void swiglu_backward_kernel(const T* __restrict__ dout, const T* __restrict__ gate,
                                       const T* __restrict__ up, T* __restrict__ dgate, T* __restrict__ dup,
                                       int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * N;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N; i < n; i += stride) {
    const int count = static_cast<int>(min(static_cast<int64_t>(N), n - i));
    if (count == N) {
      float d[N], g[N], u[N], dg[N], du[N];
      load<T, N>(dout + i, d);
      load<T, N>(gate + i, g);
      load<T, N>(up + i, u);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float sg = sigmoid(g[j]);
        du[j] = d[j] * g[j] * sg;
        dg[j] = d[j] * u[j] * sg * (1.f + g[j] * (1.f - sg));
      }
      store<T, N>(dgate + i, dg);
      store<T, N>(dup + i, du);
    } else {
      for (int64_t k = i; k < i + count; ++k) {
        float d[1], g[1], u[1], dg[1], du[1];
        load<T, 1>(dout + k, d);
        load<T, 1>(gate + k, g);
        load<T, 1>(up + k, u);
        const float sg = sigmoid(g[0]);
        du[0] = d[0] * g[0] * sg;
        dg[0] = d[0] * u[0] * sg * (1.f + g[0] * (1.f - sg));
        store<T, 1>(dgate + k, dg);
        store<T, 1>(dup + k, du);
      }
    }
  }
}

// ---------------------------------------------------------------- launchers

constexpr int kThreads = 256;

// Enough blocks to cover n once, capped at a few waves (the loop strides the rest).
unsigned blocks_for(int64_t n, int per_thread) {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t needed = (n + static_cast<int64_t>(kThreads) * per_thread - 1) / (static_cast<int64_t>(kThreads) * per_thread);
  return static_cast<unsigned>(std::clamp<int64_t>(needed, 1, static_cast<int64_t>(sms) * 16));
}

bool all_aligned(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (!detail::aligned(p, 16)) return false;
  return true;
}

template <typename T>
void forward_typed(const SwiGluForwardParams& p, cudaStream_t s) {
  constexpr int kPack = 16 / sizeof(T);
  const auto* gate = static_cast<const T*>(p.gate);
  const auto* up = static_cast<const T*>(p.up);
  auto* out = static_cast<T*>(p.out);
  if (all_aligned({p.gate, p.up, p.out}))
    swiglu_forward_kernel<T, kPack><<<blocks_for(p.n, kPack), kThreads, 0, s>>>(gate, up, out, p.n);
  else
    swiglu_forward_kernel<T, 1><<<blocks_for(p.n, 1), kThreads, 0, s>>>(gate, up, out, p.n);
}

template <typename T>
void backward_typed(const SwiGluBackwardParams& p, cudaStream_t s) {
  constexpr int kPack = 16 / sizeof(T);
  const auto* dout = static_cast<const T*>(p.dout);
  const auto* gate = static_cast<const T*>(p.gate);
  const auto* up = static_cast<const T*>(p.up);
  auto* dgate = static_cast<T*>(p.dgate);
  auto* dup = static_cast<T*>(p.dup);
  if (all_aligned({p.dout, p.gate, p.up, p.dgate, p.dup}))
    swiglu_backward_kernel<T, kPack><<<blocks_for(p.n, kPack), kThreads, 0, s>>>(dout, gate, up, dgate, dup, p.n);
  else
    swiglu_backward_kernel<T, 1><<<blocks_for(p.n, 1), kThreads, 0, s>>>(dout, gate, up, dgate, dup, p.n);
}

}  // namespace

void launch_swiglu_forward(const SwiGluForwardParams& p, void* stream) {
  if (p.n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == KernelDType::kFloat32)
    forward_typed<float>(p, s);
  else
    forward_typed<__nv_bfloat16>(p, s);
}

void launch_swiglu_backward(const SwiGluBackwardParams& p, void* stream) {
  if (p.n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == KernelDType::kFloat32)
    backward_typed<float>(p, s);
  else
    backward_typed<__nv_bfloat16>(p, s);
}

}  // namespace st::kernels
