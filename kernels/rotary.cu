// Fused rotary embedding of q and k. A block takes one token, or a few
// when a token has fewer items than twice its 128 threads (an item is a
// pack of pairs of one head; with gradients recorded q and k are separate
// launches, e.g. 7B's k alone is 8 heads: 64 items). The block computes its
// tokens' cos/sin into shared memory (sincosf at full precision from the
// same fp32 angle the reference uses, then no rounding of the tables to the
// storage dtype); each thread loads its first two items before that, so the
// loads' latency overlaps the table work, then rotates every (head, pair)
// of q and then of k it owns. Each thread reads both halves of its pairs
// before writing them, so in == out is safe (in-place forward).
// Memory traffic is one read and one write of q and k; with 16-byte packs
// when the head layout and pointers allow. The backward is the same kernel
// with sign = -1 (the transpose of a rotation is the rotation by -angle).
// On by default on CUDA since it passed its GPU tests; ST_FUSED_ROTARY=0 turns it off.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_common.cuh"
#include "kernels/rotary.h"

namespace st::kernels {
namespace {

using detail::load_pack;
using detail::Pack;
using detail::to_float;
using detail::store;

// ---------------------------------------------------------------- kernel

// Items (packs of P pairs of one head of q or k) a thread loads before the
// tables are ready.
constexpr int kPrefetch = 2;
constexpr int kThreads = 128;

template <typename T, int P>
__global__ void __launch_bounds__(kThreads) rotary_kernel(const RotaryParams p, int64_t tokens_per_block) {
  extern __shared__ float tables[];  // [tokens_per_block][2][half]: cos, then sign * sin
  const int64_t half = p.head_dim / 2, groups = half / P;
  const int64_t q_items = p.q.heads * groups;
  const int64_t per_token = q_items + (p.k.in ? p.k.heads * groups : 0);
  const int64_t first_token = static_cast<int64_t>(blockIdx.x) * tokens_per_block;
  const int64_t left = p.batch * p.steps - first_token;
  const int64_t tokens = left < tokens_per_block ? left : tokens_per_block;
  const int64_t total = tokens * per_token;
  // Where item `item` of the block is read and written, and its token's tables.
  struct Item {
    const T* src;
    T* dst;
    int64_t i;        // first pair within the head
    int64_t local;    // token within the block
  };
  auto locate = [&](int64_t item) {
    const int64_t local = item / per_token, within = item % per_token;
    const int64_t token = first_token + local, b = token / p.steps, t = token % p.steps;
    const bool is_q = within < q_items;
    const RotaryTensor& x = is_q ? p.q : p.k;
    const int64_t in_head = is_q ? within : within - q_items;
    const int64_t h = in_head / groups, i = (in_head % groups) * P;
    return Item{static_cast<const T*>(x.in) + b * x.in_stride_batch + h * x.in_stride_head + t * x.in_stride_step,
                static_cast<T*>(x.out) + b * x.out_stride_batch + h * x.out_stride_head + t * x.out_stride_step, i,
                local};
  };
  // The thread's first items are loaded before the tables are computed, so
  // their memory latency overlaps the position loads and the sincosf work.
  // Held as stored (16 bytes a pack whatever the dtype), converted when used.
  Pack<T, P> x1[kPrefetch], x2[kPrefetch];
#pragma unroll
  for (int f = 0; f < kPrefetch; ++f) {
    const int64_t item = threadIdx.x + static_cast<int64_t>(f) * blockDim.x;
    if (item < total) {
      const Item at = locate(item);
      x1[f] = load_pack<T, P>(at.src + at.i);
      x2[f] = load_pack<T, P>(at.src + half + at.i);
    }
  }
  for (int64_t e = threadIdx.x; e < tokens * half; e += blockDim.x) {
    const int64_t local = e / half, i = e % half, token = first_token + local;
    const int64_t b = token / p.steps, t = token % p.steps;
    const float position = static_cast<float>(p.positions[b * p.positions_stride_batch + t * p.positions_stride_step]);
    float sn, cs;
    sincosf(position * p.inverse_frequencies[i], &sn, &cs);
    tables[local * 2 * half + i] = cs;
    tables[local * 2 * half + half + i] = p.sign * sn;
  }
  __syncthreads();
  // Keeps the prefetched packs as stored across the table work (see keep_as_stored).
#pragma unroll
  for (int f = 0; f < kPrefetch; ++f) {
    detail::keep_as_stored(x1[f]);
    detail::keep_as_stored(x2[f]);
  }
  auto rotate = [&](const Item& at, const Pack<T, P>& a1, const Pack<T, P>& a2) {
    const float* cos_a = tables + at.local * 2 * half;
    const float* sin_a = cos_a + half;
    float y1[P], y2[P];
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const float c = cos_a[at.i + j], s = sin_a[at.i + j];
      const float v1 = to_float(a1.v[j]), v2 = to_float(a2.v[j]);
      y1[j] = v1 * c - v2 * s;
      y2[j] = v2 * c + v1 * s;
    }
    store<T, P>(at.dst + at.i, y1);
    store<T, P>(at.dst + half + at.i, y2);
  };
#pragma unroll
  for (int f = 0; f < kPrefetch; ++f) {
    const int64_t item = threadIdx.x + static_cast<int64_t>(f) * blockDim.x;
    if (item < total) rotate(locate(item), x1[f], x2[f]);
  }
  for (int64_t item = threadIdx.x + static_cast<int64_t>(kPrefetch) * blockDim.x; item < total;
       item += blockDim.x) {
    const Item at = locate(item);
    rotate(at, load_pack<T, P>(at.src + at.i), load_pack<T, P>(at.src + half + at.i));
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

// Tokens per block: enough that every thread has kPrefetch items when one
// token has fewer (a q-only or k-only launch, as with gradients recorded),
// at most 8.
template <typename T>
void launch_typed(const RotaryParams& p, cudaStream_t stream) {
  constexpr int kPack = 16 / sizeof(T);
  const int64_t half = p.head_dim / 2;
  const bool packed = packs_fit(p.q, half, kPack, sizeof(T)) && packs_fit(p.k, half, kPack, sizeof(T));
  const int64_t pairs_per_item = packed ? kPack : 1;
  const int64_t per_token = (p.q.heads + (p.k.in ? p.k.heads : 0)) * (half / pairs_per_item);
  const int64_t wanted = static_cast<int64_t>(kThreads) * kPrefetch;
  const int64_t tokens_per_block = std::clamp<int64_t>((wanted + per_token - 1) / per_token, 1, 8);
  const int64_t tokens = p.batch * p.steps;
  const unsigned blocks = static_cast<unsigned>((tokens + tokens_per_block - 1) / tokens_per_block);
  const size_t shared = static_cast<size_t>(tokens_per_block) * 2 * half * sizeof(float);
  if (packed)
    rotary_kernel<T, kPack><<<blocks, kThreads, shared, stream>>>(p, tokens_per_block);
  else
    rotary_kernel<T, 1><<<blocks, kThreads, shared, stream>>>(p, tokens_per_block);
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
