// Row-wise log-softmax statistics and gradient over a chunk of logits, the
// memory-bound half of the fused LM head + cross-entropy (the matmuls go to
// cuBLAS; see model/lm_head.cpp). Plain types only (see rms_norm.h).
#pragma once

#include <cstdint>

#include "kernels/kernel_types.h"

namespace st::kernels {

/// One block per row of logits [rows, vocab] (row-major, `dtype`), fp32 arithmetic:
///   lse[r]      = log sum_v exp(logits[r, v])             (online max/sum, one read)
///   log_prob[r] = logits[r, target[r]] - lse[r]           (0 when target[r] < 0: ignored)
/// and, when `coeff` is set, the gradient of sum_r coeff[r] * log_prob[r] with
/// respect to the logits, written over them in place (a second read):
///   logits[r, v] = round(coeff[r] * ([v == target[r]] - exp(logits[r, v] - lse[r])))
/// Ignored rows get zeros. Targets must lie in [0, vocab) or be negative.
struct LogSoftmaxRowsParams {
  void* logits;            // [rows, vocab]
  const int64_t* targets;  // [rows]
  const float* coeff;      // [rows] or null: statistics only, logits untouched
  float* lse;              // [rows] out
  float* log_prob;         // [rows] out
  int64_t rows;
  int64_t vocab;
  KernelDType dtype;
};

/// Launch on `stream` (a cudaStream_t); defined only in CUDA builds.
void launch_log_softmax_rows(const LogSoftmaxRowsParams& params, void* stream);

}  // namespace st::kernels
