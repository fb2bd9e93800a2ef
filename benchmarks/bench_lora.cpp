// A LoRA projection y = x W^T + s (x A^T) B^T (W frozen; x, A and B need
// gradients, as inside a LoRA model past its first layer), forward and
// backward, four ways:
//   - base:  the frozen projection alone. Any fused LoRA kernel still does
//            its matmuls, so this is the floor a fused kernel could reach;
//   - peft:  PEFT's composition: base(x) + lora_B(lora_A(x)) * s, with
//            separate matmuls, a scale and an add in each direction;
//   - addmm: the low-rank product added by the second matmul itself
//            (addmm with alpha = s into the base output), autograd's backward;
//   - fused: st::lora_projection (lora/lora_projection.h), the same in
//            both directions with a hand-written backward.
// A fused kernel pays only if (best of peft and addmm) - base is a real
// share of the time; "most_a_fused_kernel_saves" is that share.
#include "benchmarks/bench_lora.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>

#include "lora/lora_projection.h"
#include "benchmarks/bench_cuda.h"

namespace st::bench {

std::vector<LoraShape> salamandra_lora_shapes() {
  return {{"2b.q_proj", 2048, 2048}, {"2b.gate_proj", 2048, 5440}, {"2b.down_proj", 5440, 2048},
          {"7b.q_proj", 4096, 4096}, {"7b.k_proj", 4096, 1024},    {"7b.gate_proj", 4096, 11008},
          {"7b.down_proj", 11008, 4096}};
}

std::vector<std::string> bench_lora_projections(const std::vector<LoraShape>& shapes, int64_t tokens, int64_t rank,
                                                bool cuda, int iterations) {
  std::vector<std::string> records;
  auto options = at::TensorOptions().device(cuda ? at::kCUDA : at::kCPU).dtype(at::kBFloat16);
  const double scale = 2.0;  // lora_alpha / r with PEFT's common alpha = 2r
  for (const LoraShape& s : shapes) {
    at::Tensor x = at::randn({tokens, s.in}, options).requires_grad_();
    at::Tensor w = at::randn({s.out, s.in}, options) * 0.02;  // frozen
    at::Tensor a = (at::randn({rank, s.in}, options) * 0.02).requires_grad_();
    at::Tensor b = (at::randn({s.out, rank}, options) * 0.02).requires_grad_();
    at::Tensor upstream = at::randn({tokens, s.out}, options);
    auto base = [&] { torch::autograd::grad({at::linear(x, w)}, {x}, {upstream}); };
    auto peft = [&] {
      at::Tensor y = at::linear(x, w) + at::linear(at::linear(x, a), b) * scale;
      torch::autograd::grad({y}, {x, a, b}, {upstream});
    };
    auto addmm = [&] {
      at::Tensor y = at::addmm(at::linear(x, w), at::mm(x, a.t()), b.t(), /*beta=*/1, /*alpha=*/scale);
      torch::autograd::grad({y}, {x, a, b}, {upstream});
    };
    auto fused = [&] {
      torch::autograd::grad({st::lora_projection(x, w, {}, a, b, scale)}, {x, a, b}, {upstream});
    };
    auto timed = [&](const std::function<void()>& fn) { return time_ms(fn, iterations, 3, 3); };
    const double base_ms = timed(base), peft_ms = timed(peft), addmm_ms = timed(addmm), fused_ms = timed(fused);
    const double best = std::min(peft_ms, addmm_ms);
    const double flops = 2.0 * 2.0 * tokens * s.in * s.out;  // forward + input gradient of the frozen W
    char line[768];
    std::snprintf(line, sizeof line,
                  "{\"op\": \"lora_projection\", \"shape\": \"%s\", \"tokens\": %lld, \"in\": %lld, \"out\": %lld, "
                  "\"rank\": %lld, \"base_ms\": %.4f, \"peft_ms\": %.4f, \"addmm_ms\": %.4f, \"fused_ms\": %.4f, "
                  "\"peft_overhead_vs_base\": %.3f, \"addmm_overhead_vs_base\": %.3f, "
                  "\"fused_overhead_vs_base\": %.3f, \"fused_speedup_vs_peft\": %.3f, "
                  "\"most_a_fused_kernel_saves\": %.3f, \"base_TFLOPs\": %.1f}",
                  s.name.c_str(), static_cast<long long>(tokens), static_cast<long long>(s.in),
                  static_cast<long long>(s.out), static_cast<long long>(rank), base_ms, peft_ms, addmm_ms, fused_ms,
                  peft_ms / base_ms - 1, addmm_ms / base_ms - 1, fused_ms / base_ms - 1, peft_ms / fused_ms,
                  (best - base_ms) / best,
                  flops / (base_ms * 1e-3) / 1e12);
    records.push_back(line);
    std::cerr << line << "\n";
  }
  return records;
}

}  // namespace st::bench
