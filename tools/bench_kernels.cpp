// Benchmark of the fused CUDA kernels (model/kernels/) against the unfused
// ATen path in the same run, on the same GPU. Not a test: it asserts nothing.
//
//   bench_kernels [--iters N] > bench_kernels.json
//
// Per op, dtype and Salamandra shape (8192 tokens; the 2B/7B/40B widths), for
// the forward and the backward separately: the median milliseconds of both
// paths, the ratio, and the achieved bandwidth of each on the op's minimal
// traffic (every input read once, every output written once) against the
// H100's 3.35 TB/s. The forward runs without autograd; the backward is
// torch::autograd::grad over a graph built once (retain_graph), so both
// paths pay the same engine overhead. Without a CUDA device it says so and
// exits 0 with {"gpu": false}.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "model/kernels/rms_norm_op.h"
#include "model/kernels/rotary_op.h"
#include "model/kernels/swiglu_op.h"
#include "model/layers.h"

namespace {

constexpr double kPeakBytesPerSecond = 3.35e12;  // H100 SXM HBM3
constexpr int64_t kTokens = 8192;

int iterations = 20;

// Median wall time of `fn` in milliseconds, synchronising the device around each call.
double time_ms(const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();
  c10::cuda::device_synchronize();
  std::vector<double> samples;
  for (int i = 0; i < iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    c10::cuda::device_synchronize();
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

std::vector<std::string> records;

void record(const std::string& op, const std::string& pass, at::ScalarType dtype, const std::string& shape,
            double bytes, double fused_ms, double aten_ms) {
  const double fused_bw = bytes / (fused_ms * 1e-3), aten_bw = bytes / (aten_ms * 1e-3);
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"op\": \"%s\", \"pass\": \"%s\", \"dtype\": \"%s\", \"shape\": \"%s\", \"bytes\": %.0f, "
                "\"fused_ms\": %.4f, \"aten_ms\": %.4f, \"speedup_vs_aten\": %.3f, \"fused_GBps\": %.1f, "
                "\"aten_GBps\": %.1f, \"fused_fraction_of_peak\": %.3f, \"aten_fraction_of_peak\": %.3f}",
                op.c_str(), pass.c_str(), dtype == at::kBFloat16 ? "bfloat16" : "float32", shape.c_str(), bytes,
                fused_ms, aten_ms, aten_ms / fused_ms, fused_bw / 1e9, aten_bw / 1e9, fused_bw / kPeakBytesPerSecond,
                aten_bw / kPeakBytesPerSecond);
  records.push_back(line);
  std::cerr << line << "\n";
}

at::Tensor backward_of(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& upstream,
                       const std::vector<at::Tensor>& inputs) {
  auto grads = torch::autograd::grad(outputs, inputs, upstream, /*retain_graph=*/true);
  return grads[0];
}

void bench_rms_norm(at::ScalarType dtype, int64_t hidden) {
  auto options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  at::Tensor x = at::randn({kTokens, hidden}, options), r = at::randn_like(x), w = at::randn({hidden}, options);
  const double element = at::elementSize(dtype), n = static_cast<double>(x.numel());
  const std::string shape = std::to_string(kTokens) + "x" + std::to_string(hidden);
  {
    at::NoGradGuard no_grad;
    const double fused = time_ms([&] { st::fused_add_rms_norm(x, r, w, 1e-5); });
    const double aten = time_ms([&] { st::add_rms_norm_reference(x, r, w, 1e-5); });
    record("add_rms_norm", "forward", dtype, shape, 4 * n * element, fused, aten);  // x, r in; y, sum out
  }
  at::Tensor xg = x.detach().requires_grad_(), rg = r.detach().requires_grad_(), wg = w.detach().requires_grad_();
  at::Tensor dy = at::randn_like(x), ds = at::randn_like(x);
  auto f = st::fused_add_rms_norm(xg, rg, wg, 1e-5);
  auto a = st::add_rms_norm_reference(xg, rg, wg, 1e-5);
  const double fused = time_ms([&] { backward_of({f.normed, f.sum}, {dy, ds}, {xg, rg, wg}); });
  const double aten = time_ms([&] { backward_of({a.normed, a.sum}, {dy, ds}, {xg, rg, wg}); });
  record("add_rms_norm", "backward", dtype, shape, 4 * n * element, fused, aten);  // dy, dsum, s in; dx out
}

void bench_swiglu(at::ScalarType dtype, int64_t ffn) {
  auto options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  at::Tensor g = at::randn({kTokens, ffn}, options), u = at::randn_like(g);
  const double element = at::elementSize(dtype), n = static_cast<double>(g.numel());
  const std::string shape = std::to_string(kTokens) + "x" + std::to_string(ffn);
  {
    at::NoGradGuard no_grad;
    const double fused = time_ms([&] { st::fused_swiglu(g, u); });
    const double aten = time_ms([&] { st::swiglu_reference(g, u); });
    record("swiglu", "forward", dtype, shape, 3 * n * element, fused, aten);
  }
  at::Tensor gg = g.detach().requires_grad_(), ug = u.detach().requires_grad_(), d = at::randn_like(g);
  at::Tensor f = st::fused_swiglu(gg, ug), a = st::swiglu_reference(gg, ug);
  const double fused = time_ms([&] { backward_of({f}, {d}, {gg, ug}); });
  const double aten = time_ms([&] { backward_of({a}, {d}, {gg, ug}); });
  record("swiglu", "backward", dtype, shape, 5 * n * element, fused, aten);  // dout, g, u in; dg, du out
}

void bench_rotary(at::ScalarType dtype, int64_t heads, int64_t kv_heads) {
  const int64_t dim = 128;
  auto options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  // The attention's layout: transposed views of [1, T, heads, D].
  at::Tensor q = at::randn({1, kTokens, heads, dim}, options).transpose(1, 2);
  at::Tensor k = at::randn({1, kTokens, kv_heads, dim}, options).transpose(1, 2);
  at::Tensor positions = (at::arange(kTokens, options.dtype(at::kLong)) % 1000).view({1, kTokens});
  at::Tensor exponents = at::arange(0, dim, 2, options.dtype(at::kFloat)) / static_cast<double>(dim);
  at::Tensor freqs = 1.0 / at::pow(10000.0, exponents);
  st::RotaryTables tables = st::rotary_tables(freqs, positions, dtype);  // built once per forward in the model
  const double element = at::elementSize(dtype), n = static_cast<double>(q.numel() + k.numel());
  const std::string shape = "T" + std::to_string(kTokens) + " heads " + std::to_string(heads) + "/" +
                            std::to_string(kv_heads) + " D128";
  {
    at::NoGradGuard no_grad;
    const double fused = time_ms([&] { st::fused_rotary_(q, k, positions, freqs); });
    const double aten = time_ms([&] {
      st::apply_rotary(q, tables);
      st::apply_rotary(k, tables);
    });
    record("rotary_qk", "forward", dtype, shape, 2 * n * element, fused, aten);
  }
  at::Tensor q_leaf = q.detach().requires_grad_(), k_leaf = k.detach().requires_grad_();
  at::Tensor dq = at::randn(q.sizes(), options), dk = at::randn(k.sizes(), options);
  auto [fq, fk] = st::fused_rotary_(q_leaf.clone(), k_leaf.clone(), positions, freqs);
  at::Tensor aq = st::apply_rotary(q_leaf, tables), ak = st::apply_rotary(k_leaf, tables);
  const double fused = time_ms([&] { backward_of({fq, fk}, {dq, dk}, {q_leaf, k_leaf}); });
  const double aten = time_ms([&] { backward_of({aq, ak}, {dq, dk}, {q_leaf, k_leaf}); });
  record("rotary_qk", "backward", dtype, shape, 2 * n * element, fused, aten);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iterations = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "usage: bench_kernels [--iters N] > bench_kernels.json\n";
      return 2;
    }
  }
  if (!at::hasCUDA()) {
    std::cerr << "bench_kernels: no CUDA device here; nothing to time (run it on the GPU machine, "
                 "tools/gpu_check.sh)\n";
    std::cout << "{\"gpu\": false, \"results\": []}\n";
    return 0;
  }
  try {
    for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
      for (int64_t hidden : {2048, 4096, 8192}) bench_rms_norm(dtype, hidden);
      for (int64_t ffn : {5440, 11008, 24576}) bench_swiglu(dtype, ffn);
      bench_rotary(dtype, 16, 16);
      bench_rotary(dtype, 32, 8);
      bench_rotary(dtype, 64, 8);
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_kernels: " << e.what() << "\n";
    std::cout << "{\"gpu\": true, \"error\": \"see stderr\", \"results\": [";
    for (size_t i = 0; i < records.size(); ++i) std::cout << (i ? ",\n  " : "\n  ") << records[i];
    std::cout << "]}\n";
    return 1;
  }
  std::cout << "{\"gpu\": true, \"peak_bytes_per_second\": " << kPeakBytesPerSecond << ", \"iterations\": "
            << iterations << ", \"results\": [";
  for (size_t i = 0; i < records.size(); ++i) std::cout << (i ? ",\n  " : "\n  ") << records[i];
  std::cout << "\n]}\n";
  return 0;
}
