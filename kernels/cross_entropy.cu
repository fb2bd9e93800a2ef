// Row-wise log-softmax statistics and in-place gradient (cross_entropy.h).
// Memory bound: a row of 256k bf16 logits is 512 KB, read once for the
// statistics (max and sum of exponentials merged on the fly, so one pass
// instead of max-then-sum) and once more to overwrite it with the gradient.
// One block per row; each thread keeps a running (max, sum) over 16-byte
// packs, and the block merges the pairs. All arithmetic is fp32, with one
// rounding per written gradient, as transformers' fp32 softmax followed by
// the cast back to the logits' dtype.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cross_entropy.h"
#include "kernels/cuda_common.cuh"

namespace st::kernels {
namespace {

using detail::load;
using detail::store;
using detail::to_float;

constexpr int kThreads = 1024;

// NaN: fmaxf ignores a NaN operand, so a NaN logit never becomes the
// maximum; it reaches the sum through exp(NaN - max) instead, which makes
// the row's log-sum-exp NaN, as log_softmax's is. The branches for an
// all -inf (or empty) maximum below must not drop one either.

// Merges the running pair (m, s), sum = s * exp(m), with (om, os).
__device__ __forceinline__ void merge(float& m, float& s, float om, float os) {
  const float nm = fmaxf(m, om);
  if (nm == -INFINITY) {  // both empty or -inf so far: the sums are 0, or NaN
    s += os;
    return;
  }
  s = s * expf(m - nm) + os * expf(om - nm);
  m = nm;
}

// Adds N values to the running pair with a single rescale.
template <int N>
__device__ __forceinline__ void accumulate(float& m, float& s, const float (&v)[N]) {
  float pm = v[0];
#pragma unroll
  for (int j = 1; j < N; ++j) pm = fmaxf(pm, v[j]);
  const float nm = fmaxf(m, pm);
  if (nm == -INFINITY) {  // nothing above -inf yet; only a NaN counts
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (isnan(v[j])) s = NAN;
    return;
  }
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < N; ++j) sum += expf(v[j] - nm);
  s = s * expf(m - nm) + sum;
  m = nm;
}

// The block's merged pair, for every thread. Ends with a barrier.
__device__ __forceinline__ void block_merge(float& m, float& s) {
  __shared__ float shared_m[32], shared_s[32];
  for (int offset = 16; offset > 0; offset >>= 1)
    merge(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) shared_m[warp] = m, shared_s[warp] = s;
  __syncthreads();
  m = lane < warps ? shared_m[lane] : -INFINITY;
  s = lane < warps ? shared_s[lane] : 0.f;
  for (int offset = 16; offset > 0; offset >>= 1)
    merge(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
  __syncthreads();
}

// N > 1 only when every row starts 16-byte aligned (vocab * sizeof(T) % 16 == 0).
template <typename T, int N, bool kGrad>
__global__ void __launch_bounds__(kThreads)
    log_softmax_rows_kernel(T* __restrict__ logits, const int64_t* __restrict__ targets,
                            const float* __restrict__ coeff, float* __restrict__ lse_out,
                            float* __restrict__ log_prob_out, int64_t vocab) {
  const int64_t row = blockIdx.x;
  T* x = logits + row * vocab;
  const int64_t target = targets[row];
  const bool valid = target >= 0;
  // Read before the gradient pass overwrites it; the merge below is the barrier.
  const float target_logit = (threadIdx.x == 0 && valid) ? to_float(x[target]) : 0.f;

  const int64_t packs = vocab / N;
  float m = -INFINITY, s = 0.f;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    float v[N];
    load<T, N>(x + p * N, v);
    accumulate<N>(m, s, v);
  }
  for (int64_t i = packs * N + threadIdx.x; i < vocab; i += blockDim.x) {
    float v[1];
    load<T, 1>(x + i, v);
    accumulate<1>(m, s, v);
  }
  block_merge(m, s);
  // x - lse as (x - m) - log(s): x - m is exact near the maximum, so the
  // likeliest tokens' log-probs keep their precision (log_softmax's order).
  const float log_s = logf(s);
  if (threadIdx.x == 0) {
    lse_out[row] = m + log_s;
    log_prob_out[row] = valid ? (target_logit - m) - log_s : 0.f;
  }
  if constexpr (kGrad) {
    const float c = valid ? coeff[row] : 0.f;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      float v[N];
      load<T, N>(x + p * N, v);
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = (p * N + j == target ? c : 0.f) - c * expf((v[j] - m) - log_s);
      store<T, N>(x + p * N, v);
    }
    for (int64_t i = packs * N + threadIdx.x; i < vocab; i += blockDim.x) {
      float v[1];
      load<T, 1>(x + i, v);
      v[0] = (i == target ? c : 0.f) - c * expf((v[0] - m) - log_s);
      store<T, 1>(x + i, v);
    }
  }
}

template <typename T, bool kGrad>
void launch_typed(const LogSoftmaxRowsParams& p, cudaStream_t stream) {
  constexpr int kPack = 16 / sizeof(T);
  auto* logits = static_cast<T*>(p.logits);
  const bool packed = p.vocab % kPack == 0 && detail::aligned(p.logits, 16);
  const dim3 grid(static_cast<unsigned>(p.rows));
  if (packed)
    log_softmax_rows_kernel<T, kPack, kGrad>
        <<<grid, kThreads, 0, stream>>>(logits, p.targets, p.coeff, p.lse, p.log_prob, p.vocab);
  else
    log_softmax_rows_kernel<T, 1, kGrad>
        <<<grid, kThreads, 0, stream>>>(logits, p.targets, p.coeff, p.lse, p.log_prob, p.vocab);
}

template <typename T>
void launch_dtype(const LogSoftmaxRowsParams& p, cudaStream_t stream) {
  if (p.coeff)
    launch_typed<T, true>(p, stream);
  else
    launch_typed<T, false>(p, stream);
}

}  // namespace

void launch_log_softmax_rows(const LogSoftmaxRowsParams& p, void* stream) {
  if (p.rows == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == KernelDType::kFloat32)
    launch_dtype<float>(p, s);
  else
    launch_dtype<__nv_bfloat16>(p, s);
}

}  // namespace st::kernels
