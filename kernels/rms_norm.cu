// Fused residual add + RMSNorm, forward and backward.
//
// Forward: one block per row. The row (after the residual add, rounded to the
// storage dtype exactly as `residual + x` would be) is kept on chip so global
// memory is read once: in registers, as stored 16-byte packs, when it is at
// most 4 packs per thread (every Salamandra width), else in shared memory as
// fp32. The sum of squares is reduced in fp32; each element is normalised,
// rounded to the storage dtype and multiplied by the weight, the order of
// casts of transformers' LlamaRMSNorm (and of the ATen reference,
// rms_norm_op.cpp). rstd per row is kept for the backward.
//
// Backward: a grid of as many blocks as fit on the device walks the rows;
// each block accumulates its rows' weight gradient per column (every thread
// owns its columns, so no atomics; in registers where they suffice, else in
// shared memory), writes one fp32 partial row, and a second kernel sums the
// partials per column (llm.c's layernorm backward does the same). The input
// gradient needs mean(dn * n) over the row before any output: rows of up to
// 4 packs per thread (512 threads; bf16 rows of up to 1024 packs take one
// block of 1024 threads) are held in registers, as stored 16-byte packs,
// between the two steps; wider rows are read twice (L1/L2 serve the second
// read).
//
// Why stored packs and not fp32 copies: a bf16 row in fp32 takes twice the
// registers, which at width 8192 left room for one 512-thread block per SM,
// so nothing overlapped a block's reduction (the first version: 47% of peak
// there; with packs two blocks fit). Reading two rows per block step instead
// was tried on the H100 and was no faster.
//
// Packs of 16 bytes are used when the row width and every pointer allow it,
// else single elements (odd widths such as 7 or 1000 in bf16 still work).
// On by default on CUDA since it passed its GPU tests; ST_FUSED_RMS_NORM=0 turns it off.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_common.cuh"
#include "kernels/rms_norm.h"

namespace st::kernels {
namespace {

using detail::block_sum;
using detail::from_float;
using detail::load;
using detail::load_pack;
using detail::Pack;
using detail::store;
using detail::to_float;

// ---------------------------------------------------------------- kernels

template <typename T, int N>
__global__ void rms_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                        const T* __restrict__ weight, T* __restrict__ y, T* __restrict__ sum,
                                        float* __restrict__ rstd, int64_t cols, float eps) {
  extern __shared__ float row_cache[];  // [cols]
  __shared__ float scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * cols;
  x += offset;
  y += offset;
  float squares = 0.f;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * N; i < cols; i += static_cast<int64_t>(blockDim.x) * N) {
    float v[N];
    load<T, N>(x + i, v);
    if (residual) {
      float r[N];
      load<T, N>(residual + offset + i, r);
      // Round the sum as `residual + x` in the storage dtype would.
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = to_float(from_float<T>(r[j] + v[j]));
      store<T, N>(sum + offset + i, v);
    }
#pragma unroll
    for (int j = 0; j < N; ++j) {
      squares += v[j] * v[j];
      row_cache[i + j] = v[j];
    }
  }
  const float inv_rms = rsqrtf(block_sum(squares, scratch) / static_cast<float>(cols) + eps);
  if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = inv_rms;
  // Each thread reads back only the elements it wrote: no barrier needed.
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * N; i < cols; i += static_cast<int64_t>(blockDim.x) * N) {
    float w[N], out[N];
    load<T, N>(weight + i, w);
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = w[j] * to_float(from_float<T>(row_cache[i + j] * inv_rms));
    store<T, N>(y + i, out);
  }
}

// The forward with the thread's PACKS packs of the row held in registers as
// stored (after the residual add they are the rounded sums, exactly what the
// shared-memory version keeps as fp32), and no shared row.
template <typename T, int N, int PACKS>
__global__ void rms_norm_forward_cached_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                               const T* __restrict__ weight, T* __restrict__ y, T* __restrict__ sum,
                                               float* __restrict__ rstd, int64_t cols, float eps) {
  __shared__ float scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * cols;
  const int64_t first = static_cast<int64_t>(threadIdx.x) * N, step = static_cast<int64_t>(blockDim.x) * N;
  Pack<T, N> row[PACKS];
  float squares = 0.f;
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int64_t i = first + p * step;
    if (i < cols) {
      row[p] = load_pack<T, N>(x + offset + i);
      if (residual) {
        const Pack<T, N> r = load_pack<T, N>(residual + offset + i);
        // Round the sum as `residual + x` in the storage dtype would.
#pragma unroll
        for (int j = 0; j < N; ++j) row[p].v[j] = from_float<T>(to_float(r.v[j]) + to_float(row[p].v[j]));
        *reinterpret_cast<Pack<T, N>*>(sum + offset + i) = row[p];
      }
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float v = to_float(row[p].v[j]);
        squares += v * v;
      }
    }
  }
  const float inv_rms = rsqrtf(block_sum(squares, scratch) / static_cast<float>(cols) + eps);
  if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = inv_rms;
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int64_t i = first + p * step;
    if (i < cols) {
      float w[N], out[N];
      load<T, N>(weight + i, w);
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = w[j] * to_float(from_float<T>(to_float(row[p].v[j]) * inv_rms));
      store<T, N>(y + offset + i, out);
    }
  }
}

template <typename T, int N>
__global__ void rms_norm_backward_kernel(const T* __restrict__ dy, const T* __restrict__ dsum,
                                         const T* __restrict__ s, const T* __restrict__ weight,
                                         const float* __restrict__ rstd, T* __restrict__ dx,
                                         float* __restrict__ workspace, int64_t rows, int64_t cols) {
  extern __shared__ float dweight_acc[];  // [cols], each column owned by one thread
  __shared__ float scratch[32];
  const int64_t first = static_cast<int64_t>(threadIdx.x) * N, step = static_cast<int64_t>(blockDim.x) * N;
  for (int64_t i = first; i < cols; i += step)
#pragma unroll
    for (int j = 0; j < N; ++j) dweight_acc[i + j] = 0.f;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t offset = row * cols;
    const float inv_rms = rstd[row];
    // mean over the row of dn * n, with dn = dy * w and n = s * rstd.
    float dot = 0.f;
    for (int64_t i = first; i < cols; i += step) {
      float g[N], w[N], v[N];
      load<T, N>(dy + offset + i, g);
      load<T, N>(weight + i, w);
      load<T, N>(s + offset + i, v);
#pragma unroll
      for (int j = 0; j < N; ++j) dot += g[j] * w[j] * v[j];
    }
    const float mean_dn_n = block_sum(dot, scratch) * inv_rms / static_cast<float>(cols);
    for (int64_t i = first; i < cols; i += step) {
      float g[N], w[N], v[N], out[N];
      load<T, N>(dy + offset + i, g);
      load<T, N>(weight + i, w);
      load<T, N>(s + offset + i, v);
      float extra[N] = {};
      if (dsum) load<T, N>(dsum + offset + i, extra);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float n = v[j] * inv_rms;
        out[j] = inv_rms * (g[j] * w[j] - n * mean_dn_n) + extra[j];
        dweight_acc[i + j] += g[j] * n;
      }
      store<T, N>(dx + offset + i, out);
    }
  }
  float* partial = workspace + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t i = first; i < cols; i += step)
#pragma unroll
    for (int j = 0; j < N; ++j) partial[i + j] = dweight_acc[i + j];
}

// A thread's share of the weight gradient in the cached backward: it owns
// the same columns in every row, so the share can stay in registers
// (PACKS x N floats) and go to the block's partial row once, at the end.
// Where that would spill (see kAccumulateInRegisters) it lives in shared
// memory instead, [cols] floats, each column owned by one thread.
template <int N, int PACKS, bool IN_REGISTERS>
struct DweightShare;

template <int N, int PACKS>
struct DweightShare<N, PACKS, true> {
  float acc[PACKS][N];
  __device__ __forceinline__ explicit DweightShare(int64_t /*first*/, int64_t /*step*/, int64_t /*cols*/) {
#pragma unroll
    for (int p = 0; p < PACKS; ++p)
#pragma unroll
      for (int j = 0; j < N; ++j) acc[p][j] = 0.f;
  }
  __device__ __forceinline__ void add(int p, int j, int64_t /*i*/, float value) { acc[p][j] += value; }
  // Writes the share of pack p (columns i..i+N) to partial_i = partial row + i.
  __device__ __forceinline__ void write(int p, int64_t /*i*/, float* partial_i) const {
    if constexpr (N % 4 == 0) {
      // 16-byte stores: partial is 16-byte aligned (cols is a multiple of N,
      // the workspace is a fresh allocation).
#pragma unroll
      for (int j = 0; j < N; j += 4)
        *reinterpret_cast<float4*>(partial_i + j) =
            make_float4(acc[p][j], acc[p][j + 1], acc[p][j + 2], acc[p][j + 3]);
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) partial_i[j] = acc[p][j];
    }
  }
};

template <int N, int PACKS>
struct DweightShare<N, PACKS, false> {
  float* acc;  // dynamic shared memory, [cols]
  __device__ __forceinline__ DweightShare(int64_t first, int64_t step, int64_t cols) {
    extern __shared__ float dweight_shared[];
    acc = dweight_shared;
#pragma unroll
    for (int p = 0; p < PACKS; ++p) {
      const int64_t i = first + p * step;
      if (i < cols)
#pragma unroll
        for (int j = 0; j < N; ++j) acc[i + j] = 0.f;
    }
  }
  __device__ __forceinline__ void add(int /*p*/, int j, int64_t i, float value) { acc[i + j] += value; }
  __device__ __forceinline__ void write(int /*p*/, int64_t i, float* partial_i) const {
#pragma unroll
    for (int j = 0; j < N; ++j) partial_i[j] = acc[i + j];
  }
};

// Registers for the weight-gradient share unless that spills under the
// launch bounds: ptxas -v for sm_90 shows no spills for one pack per thread
// (either dtype, 512 or 1024 threads) and for fp32 up to 4 packs, but spills
// for bf16 with 2 or more (the stored packs and 16+ accumulators exceed 64
// registers); those (bf16 wider than 8192) keep the share in shared memory.
template <typename T, int PACKS>
constexpr bool kAccumulateInRegisters = PACKS == 1 || sizeof(T) == 4;

// The same computation with the thread's PACKS packs of the row held in
// registers as stored: dy, s and dsum are read once per row (the generic
// kernel reads them twice), all loads of a row are issued before the
// reduction, and the weight is loaded once per block. Holding the packs as
// stored (not as fp32) halves a bf16 row's registers, which lets two blocks
// of 512 threads share an SM (up to 2 packs per thread), so one block's
// loads overlap the other's reduction. The weight-gradient share in
// registers (above) replaced a shared-memory accumulator whose 16-byte read
// and write per pack and row, two-way bank-conflicted in bf16, held the
// kernel at 76% of peak bandwidth on the H100. MAX_THREADS is 512, or 1024
// for bf16 rows of 513 to 1024 packs (see backward_launch).
template <typename T, int N, int PACKS, int MAX_THREADS = 512>
__global__ void __launch_bounds__(MAX_THREADS, MAX_THREADS > 512 ? 1 : (PACKS <= 2 ? 2 : 1))
    rms_norm_backward_cached_kernel(const T* __restrict__ dy, const T* __restrict__ dsum, const T* __restrict__ s,
                                    const T* __restrict__ weight, const float* __restrict__ rstd, T* __restrict__ dx,
                                    float* __restrict__ workspace, int64_t rows, int64_t cols) {
  __shared__ float scratch[32];
  const int64_t first = static_cast<int64_t>(threadIdx.x) * N, step = static_cast<int64_t>(blockDim.x) * N;
  DweightShare<N, PACKS, kAccumulateInRegisters<T, PACKS>> dweight(first, step, cols);
  Pack<T, N> w[PACKS];
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int64_t i = first + p * step;
    if (i < cols) w[p] = load_pack<T, N>(weight + i);
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t offset = row * cols;
    const float inv_rms = rstd[row];
    Pack<T, N> g[PACKS], v[PACKS], extra[PACKS];
    float dot = 0.f;
#pragma unroll
    for (int p = 0; p < PACKS; ++p) {
      const int64_t i = first + p * step;
      if (i < cols) {
        g[p] = load_pack<T, N>(dy + offset + i);
        v[p] = load_pack<T, N>(s + offset + i);
        if (dsum) extra[p] = load_pack<T, N>(dsum + offset + i);
#pragma unroll
        for (int j = 0; j < N; ++j) dot += to_float(g[p].v[j]) * to_float(w[p].v[j]) * to_float(v[p].v[j]);
      }
    }
    const float mean_dn_n = block_sum(dot, scratch) * inv_rms / static_cast<float>(cols);
    // Without this the compiler keeps the fp32 conversions from the dot
    // product alive across the reduction (twice the registers) instead of
    // converting the stored packs again, which costs a few integer ops.
#pragma unroll
    for (int p = 0; p < PACKS; ++p) {
      detail::keep_as_stored(g[p]);
      detail::keep_as_stored(v[p]);
      detail::keep_as_stored(w[p]);
    }
#pragma unroll
    for (int p = 0; p < PACKS; ++p) {
      const int64_t i = first + p * step;
      if (i < cols) {
        float out[N];
#pragma unroll
        for (int j = 0; j < N; ++j) {
          const float gj = to_float(g[p].v[j]), n = to_float(v[p].v[j]) * inv_rms;
          out[j] = inv_rms * (gj * to_float(w[p].v[j]) - n * mean_dn_n) + (dsum ? to_float(extra[p].v[j]) : 0.f);
          dweight.add(p, j, i, gj * n);
        }
        store<T, N>(dx + offset + i, out);
      }
    }
  }
  float* partial = workspace + static_cast<int64_t>(blockIdx.x) * cols;
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int64_t i = first + p * step;
    if (i < cols) dweight.write(p, i, partial + i);
  }
}

// Sums the blocks' partial rows per column: a block per 32 columns, its 16
// warps each summing every 16th partial row (coalesced), then across warps.
constexpr int kDweightRowGroups = 16;

template <typename T>
__global__ void rms_norm_dweight_kernel(const float* __restrict__ workspace, T* __restrict__ dweight,
                                        int64_t blocks, int64_t cols) {
  __shared__ float partial[kDweightRowGroups][33];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float total = 0.f;
  if (col < cols)
    for (int64_t b = threadIdx.y; b < blocks; b += kDweightRowGroups) total += workspace[b * cols + col];
  partial[threadIdx.y][threadIdx.x] = total;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float sum = 0.f;
#pragma unroll
    for (int r = 0; r < kDweightRowGroups; ++r) sum += partial[r][threadIdx.x];
    dweight[col] = from_float<T>(sum);
  }
}

// ---------------------------------------------------------------- launchers

// Threads per block: enough for one pack each up to 256, a multiple of 32.
int threads_for(int64_t cols, int n) {
  const int64_t packs = (cols + n - 1) / n;
  return static_cast<int>(std::clamp<int64_t>((packs + 31) / 32 * 32, 32, 256));
}

// Dynamic shared memory beyond 48 KB must be requested per kernel.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

template <typename T, int N>
void forward_typed(const RmsNormForwardParams& p, cudaStream_t stream) {
  using Kernel = void (*)(const T*, const T*, const T*, T*, T*, float*, int64_t, float);
  const int threads = threads_for(p.cols, N);
  const int64_t packs = (p.cols + N - 1) / N, per_thread = (packs + threads - 1) / threads;
  // The register-cached kernel when the row fits 4 packs per thread, else the shared-memory one.
  size_t shared = 0;
  Kernel kernel = rms_norm_forward_cached_kernel<T, N, 4>;
  if (per_thread == 1) kernel = rms_norm_forward_cached_kernel<T, N, 1>;
  else if (per_thread == 2) kernel = rms_norm_forward_cached_kernel<T, N, 2>;
  else if (per_thread > 4) {
    kernel = rms_norm_forward_kernel<T, N>;
    shared = static_cast<size_t>(p.cols) * sizeof(float);
    allow_shared_memory(kernel, shared);
  }
  kernel<<<static_cast<unsigned>(p.rows), threads, shared, stream>>>(
      static_cast<const T*>(p.x), static_cast<const T*>(p.residual), static_cast<const T*>(p.weight),
      static_cast<T*>(p.y), static_cast<T*>(p.sum), p.rstd, p.cols, p.eps);
}

// The backward kernel for a width: the register-cached one when the row
// fits in at most 4 packs per thread (up to 512 threads), else the generic one.
template <typename T>
using BackwardKernel = void (*)(const T*, const T*, const T*, const T*, const float*, T*, float*, int64_t, int64_t);

template <typename T>
struct BackwardLaunch {
  BackwardKernel<T> kernel;
  int threads;
  size_t shared;
};

template <typename T, int N>
BackwardLaunch<T> backward_launch(int64_t cols) {
  const size_t shared = static_cast<size_t>(cols) * sizeof(float);
  const int64_t packs = (cols + N - 1) / N;
  const int threads = static_cast<int>(std::clamp<int64_t>((packs + 31) / 32 * 32, 32, 512));
  const int64_t per_thread = (packs + threads - 1) / threads;
  BackwardLaunch<T> launch{rms_norm_backward_kernel<T, N>, threads_for(cols, N), shared};
  // Dynamic shared memory only where the weight-gradient share is not in registers.
  auto shared_for = [&](bool in_registers) { return in_registers ? size_t{0} : shared; };
  if (per_thread == 1)
    launch = {rms_norm_backward_cached_kernel<T, N, 1>, threads, shared_for(kAccumulateInRegisters<T, 1>)};
  else if (sizeof(T) == 2 && per_thread == 2)
    // bf16 rows of 513 to 1024 packs (width 8192, the 40B model): one pack
    // per thread in one block of up to 1024, so the weight-gradient share
    // fits in registers. Measured on the H100 at 65536 x 8192: 83.9% of peak,
    // against 76.9% for two packs per thread (512 threads, shared-memory
    // share) and 72.1% for two packs with a register share and the weight
    // reloaded each row (it spills).
    launch = {rms_norm_backward_cached_kernel<T, N, 1, 1024>, static_cast<int>((packs + 31) / 32 * 32), 0};
  else if (per_thread == 2)
    launch = {rms_norm_backward_cached_kernel<T, N, 2>, threads, shared_for(kAccumulateInRegisters<T, 2>)};
  else if (per_thread <= 4)
    launch = {rms_norm_backward_cached_kernel<T, N, 4>, threads, shared_for(kAccumulateInRegisters<T, 4>)};
  allow_shared_memory(launch.kernel, launch.shared);
  return launch;
}

// Blocks of the backward: as many as fit on the device at once (each walks
// rows / blocks rows), from the occupancy of the kernel the width selects.
template <typename T, int N>
int64_t backward_blocks_typed(int64_t rows, int64_t cols) {
  int device = 0, sms = 132, per_sm = 0;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const BackwardLaunch<T> launch = backward_launch<T, N>(cols);
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, launch.kernel, launch.threads, launch.shared) !=
          cudaSuccess ||
      per_sm < 1) {
    cudaGetLastError();  // clear it; fall back to a few blocks per SM
    per_sm = 4;
  }
  return std::max<int64_t>(1, std::min<int64_t>(rows, static_cast<int64_t>(per_sm) * sms));
}

template <typename T>
int64_t backward_blocks_dtype(int64_t rows, int64_t cols) {
  constexpr int kPack = 16 / sizeof(T);
  return cols % kPack == 0 ? backward_blocks_typed<T, kPack>(rows, cols) : backward_blocks_typed<T, 1>(rows, cols);
}

template <typename T, int N>
void backward_typed(const RmsNormBackwardParams& p, cudaStream_t stream) {
  const int64_t blocks = rms_norm_backward_blocks(p.rows, p.cols, p.dtype);
  const BackwardLaunch<T> launch = backward_launch<T, N>(p.cols);
  launch.kernel<<<static_cast<unsigned>(blocks), launch.threads, launch.shared, stream>>>(
      static_cast<const T*>(p.dy), static_cast<const T*>(p.dsum), static_cast<const T*>(p.s),
      static_cast<const T*>(p.weight), p.rstd, static_cast<T*>(p.dx), p.workspace, p.rows, p.cols);
  rms_norm_dweight_kernel<T><<<static_cast<unsigned>((p.cols + 31) / 32), dim3(32, kDweightRowGroups), 0, stream>>>(
      p.workspace, static_cast<T*>(p.dweight), blocks, p.cols);
}

// 16-byte packs when the width and all pointers allow, else one element at a time.
template <typename T>
bool packs_fit(int64_t cols, std::initializer_list<const void*> pointers) {
  constexpr int n = 16 / sizeof(T);
  if (cols % n != 0) return false;
  for (const void* ptr : pointers)
    if (ptr && !detail::aligned(ptr, 16)) return false;
  return true;
}

template <typename T>
void forward_dispatch(const RmsNormForwardParams& p, cudaStream_t stream) {
  if (packs_fit<T>(p.cols, {p.x, p.residual, p.weight, p.y, p.residual ? p.sum : nullptr}))
    forward_typed<T, 16 / sizeof(T)>(p, stream);
  else
    forward_typed<T, 1>(p, stream);
}

template <typename T>
void backward_dispatch(const RmsNormBackwardParams& p, cudaStream_t stream) {
  if (packs_fit<T>(p.cols, {p.dy, p.dsum, p.s, p.weight, p.dx}))
    backward_typed<T, 16 / sizeof(T)>(p, stream);
  else
    backward_typed<T, 1>(p, stream);
}

}  // namespace

int64_t rms_norm_backward_blocks(int64_t rows, int64_t cols, KernelDType dtype) {
  return dtype == KernelDType::kFloat32 ? backward_blocks_dtype<float>(rows, cols)
                                        : backward_blocks_dtype<__nv_bfloat16>(rows, cols);
}

void launch_rms_norm_forward(const RmsNormForwardParams& p, void* stream) {
  if (p.rows == 0 || p.cols == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == KernelDType::kFloat32)
    forward_dispatch<float>(p, s);
  else
    forward_dispatch<__nv_bfloat16>(p, s);
}

void launch_rms_norm_backward(const RmsNormBackwardParams& p, void* stream) {
  if (p.cols == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.rows == 0) {
    // No rows: the weight gradient is zero.
    cudaMemsetAsync(p.dweight, 0, p.cols * (p.dtype == KernelDType::kFloat32 ? 4 : 2), s);
    return;
  }
  if (p.dtype == KernelDType::kFloat32)
    backward_dispatch<float>(p, s);
  else
    backward_dispatch<__nv_bfloat16>(p, s);
}

}  // namespace st::kernels
