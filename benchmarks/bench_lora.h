// The profiling behind the decision on a fused LoRA projection (issue 5's
// "if profiling on the GPU shows it pays"), part of bench_kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st::bench {

struct LoraShape {
  std::string name;  // e.g. "2b.q_proj"
  int64_t in, out;
};

/// The Salamandra projections LoRA adapts, at the 2B and 7B widths.
std::vector<LoraShape> salamandra_lora_shapes();

/// One JSON object per shape: forward + backward of a LoRA projection of
/// `tokens` rows at `rank`, as PEFT composes it, with the low-rank term
/// added by the matmul itself (addmm), and through st::lora_projection,
/// against the frozen projection alone, which bounds any fused one from below. Each call is timed by
/// `time_ms` (milliseconds of one call of its argument).
std::vector<std::string> bench_lora_projections(const std::vector<LoraShape>& shapes, int64_t tokens, int64_t rank,
                                                bool cuda, int iterations);

}  // namespace st::bench
