// Fused rotary embedding of q and k. One block per token (batch entry x
// step): the block computes the token's cos/sin once into shared memory
// (sincosf at full precision from the same fp32 angle the reference uses,
// then no rounding of the tables to the storage dtype), then its threads
// rotate every (head, pair) of q and then of k. Each thread reads both halves
// of its pairs before writing them, so in == out is safe (in-place forward).
// Memory traffic is one read and one write of q and k; with 16-byte packs
// when the head layout and pointers allow. The backward is the same kernel
// with sign = -1 (the transpose of a rotation is the rotation by -angle).
// On by default on CUDA since it passed its GPU tests; ST_FUSED_ROTARY=0 turns it off.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "model/kernels/cuda_common.cuh"
#include "model/kernels/rotary.h"

namespace st::kernels {
namespace {

using detail::load;
using detail::store;

// ---------------------------------------------------------------- kernel

template <typename T, int P>
__global__ void rotary_kernel(const RotaryParams p) {
  __shared__ float cos_a[kRotaryMaxHeadDim / 2], sin_a[kRotaryMaxHeadDim / 2];
  const int64_t token = blockIdx.x;
  const int64_t b = token / p.steps, t = token % p.steps, half = p.head_dim / 2;
  const float position = static_cast<float>(p.positions[b * p.positions_stride_batch + t * p.positions_stride_step]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(position * p.inverse_frequencies[i], &s, &c);
    cos_a[i] = c;
    sin_a[i] = p.sign * s;
  }
  __syncthreads();
  const int64_t groups = half / P;  // packs of P pairs per head
  const int64_t q_items = p.q.heads * groups;
  const int64_t total = q_items + (p.k.in ? p.k.heads * groups : 0);
  for (int64_t item = threadIdx.x; item < total; item += blockDim.x) {
    const bool is_q = item < q_items;
    const RotaryTensor& x = is_q ? p.q : p.k;
    const int64_t local = is_q ? item : item - q_items;
    const int64_t h = local / groups, i = (local % groups) * P;
    const T* src = static_cast<const T*>(x.in) + b * x.in_stride_batch + h * x.in_stride_head + t * x.in_stride_step;
    T* dst = static_cast<T*>(x.out) + b * x.out_stride_batch + h * x.out_stride_head + t * x.out_stride_step;
    float x1[P], x2[P], y1[P], y2[P];
    load<T, P>(src + i, x1);
    load<T, P>(src + half + i, x2);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const float c = cos_a[i + j], s = sin_a[i + j];
      y1[j] = x1[j] * c - x2[j] * s;
      y2[j] = x2[j] * c + x1[j] * s;
    }
    store<T, P>(dst + i, y1);
    store<T, P>(dst + half + i, y2);
  }
}

// ---------------------------------------------------------------- launcher

// 16-byte packs need pack-aligned bases and strides, and whole packs per half.
bool packs_fit(const RotaryTensor& x, int64_t half, int pack, int element_size) {
  if (!x.in) return true;
  if (half % pack != 0) return false;
  if (!detail::aligned(x.in, pack * element_size) || !detail::aligned(x.out, pack * element_size)) return false;
  for (int64_t stride : {x.in_stride_batch, x.in_stride_head, x.in_stride_step, x.out_stride_batch,
                         x.out_stride_head, x.out_stride_step})
    if (stride % pack != 0) return false;
  return true;
}

template <typename T>
void launch_typed(const RotaryParams& p, cudaStream_t stream) {
  constexpr int kPack = 16 / sizeof(T);
  const int64_t half = p.head_dim / 2;
  const unsigned blocks = static_cast<unsigned>(p.batch * p.steps);
  const int threads = 128;
  if (packs_fit(p.q, half, kPack, sizeof(T)) && packs_fit(p.k, half, kPack, sizeof(T)))
    rotary_kernel<T, kPack><<<blocks, threads, 0, stream>>>(p);
  else
    rotary_kernel<T, 1><<<blocks, threads, 0, stream>>>(p);
}

}  // namespace

void launch_rotary(const RotaryParams& p, void* stream) {
  if (p.batch == 0 || p.steps == 0 || p.head_dim == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == KernelDType::kFloat32)
    launch_typed<float>(p, s);
  else
    launch_typed<__nv_bfloat16>(p, s);
}

}  // namespace st::kernels
