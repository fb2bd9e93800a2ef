// Benchmark of the fused CUDA kernels (kernels/) against the unfused
// ATen path in the same run, on the same GPU. Not a test: it asserts nothing.
//
//   bench_kernels [--iters N] [--only rms_norm,rotary,...] > bench_kernels.json
//   bench_kernels --cpu-smoke     # the chained cases, small, on the CPU (checks this file)
//
// Per op, dtype and Salamandra shape (8192 tokens; the 2B/7B/40B widths), for
// the forward and the backward separately: the median milliseconds of both
// paths (ten back-to-back calls per sample), the ratio, and the achieved
// bandwidth of each on the op's minimal
// traffic (every input read once, every output written once) against the
// H100's 3.35 TB/s. The forward runs without autograd; the backward is
// torch::autograd::grad over a graph built once (retain_graph), so both
// paths pay the same engine overhead; since that overhead bounds the small
// ones, RMSNorm and rotary are timed again at 8x the rows (65536), where
// the GPU work outlasts the host's and no operand fits in L2: the kernels'
// own bandwidth. Each backward is also timed inside a chain of 16 ops under
// one backward, as in training (pass "backward_in_chain"; consecutive links
// share operands, so L2 can flatter it). Then the LM head + cross-entropy at
// 8192 tokens x 256k vocabulary (time against the three matmuls it cannot
// avoid, peak extra memory against the unfused transformers path) and AdamW
// (ATen's fused kernel against the _foreach composition and the bandwidth
// bound), and a LoRA projection (benchmarks/bench_lora.cpp: whether a fused one
// could pay). The device's own ceilings (a large copy, a large bf16 product) are
// measured first. Without a CUDA device it says so and exits 0 with
// {"gpu": false}.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/rms_norm_op.h"
#include "kernels/rotary_op.h"
#include "kernels/swiglu_op.h"
#include "model/layers.h"
#include "model/lm_head.h"
#include "kernels/cross_entropy_op.h"
#include "kernels/fused_switch.h"
#include "benchmarks/bench_cuda.h"
#include "benchmarks/bench_lora.h"

namespace {

constexpr double kPeakBytesPerSecond = 3.35e12;  // H100 SXM HBM3
constexpr int64_t kTokens = 8192;
constexpr int64_t kLargeTokens = 8 * kTokens;

int iterations = 20;

// The sections to run (--only); empty: all of them.
std::set<std::string> only;
const std::set<std::string> kSections = {"rms_norm", "swiglu", "rotary", "chain", "adamw", "lora", "lm_head"};
bool wanted(const std::string& section) { return only.empty() || only.count(section) > 0; }

// The elementwise kernels take tens of microseconds: ten calls per sample.
double time_ms(const std::function<void()>& fn) { return st::bench::time_ms(fn, iterations, 3, 10); }

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

void bench_rms_norm(at::ScalarType dtype, int64_t hidden, int64_t tokens = kTokens) {
  auto options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  at::Tensor x = at::randn({tokens, hidden}, options), r = at::randn_like(x), w = at::randn({hidden}, options);
  const double element = at::elementSize(dtype), n = static_cast<double>(x.numel());
  const std::string shape = std::to_string(tokens) + "x" + std::to_string(hidden);
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

// q and k in the attention's layout (transposed views of [1, T, heads, 128]),
// Salamandra's frequencies, positions restarting every 1000 tokens.
struct RotaryInputs {
  at::Tensor q, k, positions, freqs;
  st::RotaryTables tables;  // built once per forward in the model
  std::string shape;
};

RotaryInputs rotary_inputs(const at::TensorOptions& options, int64_t tokens, int64_t heads, int64_t kv_heads) {
  const int64_t dim = 128;
  RotaryInputs in;
  in.q = at::randn({1, tokens, heads, dim}, options).transpose(1, 2);
  in.k = at::randn({1, tokens, kv_heads, dim}, options).transpose(1, 2);
  in.positions = (at::arange(tokens, options.dtype(at::kLong)) % 1000).view({1, tokens});
  in.freqs = 1.0 / at::pow(10000.0, at::arange(0, dim, 2, options.dtype(at::kFloat)) / static_cast<double>(dim));
  in.tables = st::rotary_tables(in.freqs, in.positions, options.dtype().toScalarType());
  in.shape = "T" + std::to_string(tokens) + " heads " + std::to_string(heads) + "/" + std::to_string(kv_heads) +
             " D128";
  return in;
}

void bench_rotary(at::ScalarType dtype, int64_t heads, int64_t kv_heads, int64_t tokens = kTokens) {
  auto options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  const RotaryInputs in = rotary_inputs(options, tokens, heads, kv_heads);
  const at::Tensor &q = in.q, &k = in.k, &positions = in.positions, &freqs = in.freqs;
  const st::RotaryTables& tables = in.tables;
  const std::string& shape = in.shape;
  const double element = at::elementSize(dtype), n = static_cast<double>(q.numel() + k.numel());
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

// ---------------------------------------------------------------- backward inside one engine run

// A training step's backward runs every op's backward in one engine pass,
// so the engine's host work per node is small; timing one op's backward per
// torch::autograd::grad call (above) charges it a whole call, which for the
// small ops is more than the kernel. Here each op is chained kChain times
// (each link with its own parameters) under one backward, and the op's
// backward time is (forward + backward - forward) / kChain.
constexpr int kChain = 16;

struct Chain {
  std::vector<at::Tensor> leaves;                  // what the backward differentiates
  std::function<std::vector<at::Tensor>()> outputs;  // runs the chain's forward
  std::vector<at::Tensor> upstream;                // one gradient per output
};

double chained_backward_ms(const Chain& chain) {
  // Each call is already kChain ops: fewer samples, two calls each.
  auto timed = [](const std::function<void()>& fn) {
    return st::bench::time_ms(fn, std::max(5, iterations / 2), /*warmup=*/2, /*calls_per_sample=*/2);
  };
  const double forward = timed([&] { chain.outputs(); });
  const double both = timed([&] { torch::autograd::grad(chain.outputs(), chain.leaves, chain.upstream); });
  return (both - forward) / kChain;
}

// One "backward_in_chain" record: the chain built fused and unfused.
void record_chain(const char* op, at::ScalarType dtype, const std::string& shape, double bytes,
                  const std::function<Chain(bool fused)>& chain) {
  record(op, "backward_in_chain", dtype, shape, bytes, chained_backward_ms(chain(true)),
         chained_backward_ms(chain(false)));
}

std::vector<at::Tensor> leaves_like(const at::Tensor& t, int count, double offset) {
  std::vector<at::Tensor> out;
  for (int i = 0; i < count; ++i) out.push_back((offset + at::randn_like(t)).detach().requires_grad_());
  return out;
}

// Each link: (normed, sum) = add_rms_norm(x, r_i, w_i); x = normed + sum.
void chained_rms_norm(const at::TensorOptions& options, int64_t tokens, int64_t hidden) {
  at::Tensor x0 = at::randn({tokens, hidden}, options).requires_grad_();
  const auto residuals = leaves_like(x0.detach(), kChain, 0.0);
  const auto weights = leaves_like(at::ones({hidden}, options), kChain, 1.0);
  auto chain = [&](bool fused) {
    Chain c{{x0}, nullptr, {at::randn({tokens, hidden}, options)}};
    for (int i = 0; i < kChain; ++i) c.leaves.push_back(residuals[i]), c.leaves.push_back(weights[i]);
    c.outputs = [&, fused] {
      at::Tensor x = x0;
      for (int i = 0; i < kChain; ++i) {
        auto o = fused ? st::fused_add_rms_norm(x, residuals[i], weights[i], 1e-5)
                       : st::add_rms_norm_reference(x, residuals[i], weights[i], 1e-5);
        x = o.normed + o.sum;
      }
      return std::vector<at::Tensor>{x};
    };
    return c;
  };
  record_chain("add_rms_norm", options.dtype().toScalarType(), std::to_string(tokens) + "x" + std::to_string(hidden),
               4.0 * static_cast<double>(x0.nbytes()), chain);
}

// Each link: x = swiglu(x, up_i).
void chained_swiglu(const at::TensorOptions& options, int64_t tokens, int64_t ffn) {
  at::Tensor x0 = at::randn({tokens, ffn}, options).requires_grad_();
  const auto ups = leaves_like(x0.detach(), kChain, 0.0);
  auto chain = [&](bool fused) {
    Chain c{{x0}, nullptr, {at::randn({tokens, ffn}, options)}};
    for (const auto& u : ups) c.leaves.push_back(u);
    c.outputs = [&, fused] {
      at::Tensor x = x0;
      for (int i = 0; i < kChain; ++i) x = fused ? st::fused_swiglu(x, ups[i]) : st::swiglu_reference(x, ups[i]);
      return std::vector<at::Tensor>{x};
    };
    return c;
  };
  record_chain("swiglu", options.dtype().toScalarType(), std::to_string(tokens) + "x" + std::to_string(ffn),
               5.0 * static_cast<double>(x0.nbytes()), chain);
}

// Each link rotates q and k again (the fused op in place on copies of the
// attention's transposed views, the reference out of place).
void chained_rotary(const at::TensorOptions& options, int64_t tokens, int64_t heads, int64_t kv_heads) {
  const RotaryInputs in = rotary_inputs(options, tokens, heads, kv_heads);
  at::Tensor q0 = in.q.detach().requires_grad_(), k0 = in.k.detach().requires_grad_();
  const at::Tensor &positions = in.positions, &freqs = in.freqs;
  const st::RotaryTables& tables = in.tables;
  auto chain = [&](bool fused) {
    Chain c{{q0, k0}, nullptr, {at::randn(q0.sizes(), options), at::randn(k0.sizes(), options)}};
    c.outputs = [&, fused] {
      at::Tensor q = fused ? q0.clone() : q0, k = fused ? k0.clone() : k0;
      for (int i = 0; i < kChain; ++i) {
        if (fused) {
          st::fused_rotary_(q, k, positions, freqs);
        } else {
          q = st::apply_rotary(q, tables);
          k = st::apply_rotary(k, tables);
        }
      }
      return std::vector<at::Tensor>{q, k};
    };
    return c;
  };
  record_chain("rotary_qk", options.dtype().toScalarType(), in.shape,
               2.0 * static_cast<double>(q0.nbytes() + k0.nbytes()), chain);
}

void bench_chained(const at::Device& device, int64_t tokens, const std::vector<int64_t>& hidden,
                   const std::vector<int64_t>& ffn) {
  for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
    auto options = at::TensorOptions().device(device).dtype(dtype);
    for (int64_t h : hidden) chained_rms_norm(options, tokens, h);
    for (int64_t f : ffn) chained_swiglu(options, tokens, f);
    chained_rotary(options, tokens, 16, 16);
    chained_rotary(options, tokens, 32, 8);
  }
}

// ---------------------------------------------------------------- device ceilings

struct Ceilings {
  double copy_bytes_per_second;  // a 1 GiB device-to-device copy, bytes read + written
  double matmul_flops_per_second;  // an 8192^3 bf16 product
};

Ceilings measure_ceilings() {
  auto options = at::TensorOptions().device(at::kCUDA);
  at::Tensor a = at::randn({256, 1024, 1024}, options), b = at::empty_like(a);
  const double copy = time_ms([&] { b.copy_(a); });
  at::Tensor x = at::randn({8192, 8192}, options.dtype(at::kBFloat16)), y = at::randn_like(x);
  const double mm = time_ms([&] { at::mm(x, y); });
  return {2.0 * static_cast<double>(a.numel()) * 4 / (copy * 1e-3), 2.0 * 8192.0 * 8192 * 8192 / (mm * 1e-3)};
}

// ---------------------------------------------------------------- LM head + cross-entropy

std::vector<std::string> lm_head_records;

// Forward + backward of the summed cross-entropy over `tokens` rows: the
// unfused transformers path (full logits, fp32 upcast, cross_entropy), ours
// with the kernel and without it (ATen row ops, same chunks), the per-row
// log-probs (DPO's path, which recomputes logits in backward), both adding
// their weight gradient into an fp32 accumulator (the trainer's path with
// master weights), the summed NLL adding it into the weight's bf16 .grad
// (without masters), and the three matmuls alone, the lower bound of any
// implementation.
void bench_lm_head(int64_t tokens, int64_t vocab, int64_t hidden, const std::vector<int64_t>& chunks,
                   const Ceilings& ceilings) {
  auto options = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::Tensor h = at::randn({tokens, hidden}, options).requires_grad_();
  at::Tensor w = (at::randn({vocab, hidden}, options) * 0.02).detach().requires_grad_();
  at::Tensor targets = at::randint(0, vocab, {tokens}, options.dtype(at::kLong));
  auto unfused = [&] {
    at::Tensor logits = at::linear(h, w).to(at::kFloat);
    at::Tensor loss = at::cross_entropy_loss(logits, targets, {}, at::Reduction::Sum, st::kIgnoreTarget);
    auto grads = torch::autograd::grad({loss}, {h, w});
  };
  auto summed = [&](int64_t chunk) {
    return [&, chunk] { auto grads = torch::autograd::grad({st::summed_target_nll(h, w, targets, chunk)}, {h, w}); };
  };
  auto per_row = [&](int64_t chunk) {
    return [&, chunk] {
      auto grads = torch::autograd::grad({st::target_log_probs(h, w, targets, chunk).sum()}, {h, w});
    };
  };
  const int iters = std::max(5, iterations / 2);
  auto timed = [&](const std::function<void()>& fn) { return st::bench::time_ms(fn, iters, 2); };

  const double unfused_bytes = static_cast<double>(st::bench::peak_extra_bytes(unfused));
  const double unfused_ms = timed(unfused);
  // The matmuls alone: logits, hidden gradient, weight gradient.
  double matmul_ms = 0;
  {
    at::NoGradGuard no_grad;
    at::Tensor g = at::randn({tokens, vocab}, options);
    at::Tensor hd = h.detach(), wd = w.detach();
    matmul_ms = timed([&] { at::mm(hd, wd.t()); }) + timed([&] { at::mm(g, wd); }) + timed([&] { at::mm(g.t(), hd); });
  }
  // Training with master weights: the weight gradient goes straight into the
  // optimizer's fp32 accumulator, which exists anyway (allocated up front).
  at::Tensor accumulator = at::zeros({vocab, hidden}, options.dtype(at::kFloat));
  // The trainer's scale, 1 / tokens: the sink is filled at it in forward, and
  // backward must bring the same factor (the sink refuses another).
  const double scale = 1.0 / static_cast<double>(tokens);
  const at::Tensor upstream = at::full({}, scale, options.dtype(at::kFloat));
  auto summed_into_accumulator = [&](int64_t chunk) {
    return [&, chunk] {
      const st::WeightGradSink sink{accumulator, scale};
      auto grads = torch::autograd::grad({st::summed_target_nll(h, w, targets, chunk, sink)}, {h}, {upstream});
    };
  };
  // DPO's path with master weights: the same accumulator, filled in backward.
  auto per_row_into_accumulator = [&](int64_t chunk) {
    return [&, chunk] {
      auto grads = torch::autograd::grad({st::target_log_probs(h, w, targets, chunk, {accumulator, 1.0}).sum()}, {h});
    };
  };
  // Training without master weights (the 7B recipe): the sink is the
  // weight's bf16 .grad, created inside the timed call as the trainer creates
  // it each step (the unfused path's weight gradient is counted the same way).
  auto summed_into_bf16_grad = [&](int64_t chunk) {
    return [&, chunk] {
      const st::WeightGradSink sink{at::zeros({vocab, hidden}, options), scale};
      auto grads = torch::autograd::grad({st::summed_target_nll(h, w, targets, chunk, sink)}, {h}, {upstream});
    };
  };
  const double flops = 3 * 2.0 * tokens * vocab * hidden;
  struct Path {
    const char* name;
    bool kernel;  // the fused row kernel, or the ATen row ops
    std::function<std::function<void()>(int64_t)> at_chunk;
  };
  const std::vector<Path> paths = {{"summed_nll_fp32_grad_accumulator", true, summed_into_accumulator},
                                   {"summed_nll_bf16_grad_sink", true, summed_into_bf16_grad},
                                   {"summed_nll", true, summed},
                                   {"summed_nll_aten_rows", false, summed},
                                   {"per_row_log_probs", true, per_row},
                                   {"per_row_log_probs_fp32_grad_accumulator", true, per_row_into_accumulator}};
  for (int64_t chunk : chunks) {
    for (const Path& path_case : paths) {
      const char* path = path_case.name;
      const st::ScopedFusedKernels scoped(path_case.kernel);
      const std::function<void()> fn = path_case.at_chunk(chunk);
      const double bytes = static_cast<double>(st::bench::peak_extra_bytes(fn));
      const double ms = timed(fn);
      char line[1024];
      std::snprintf(line, sizeof line,
                    "{\"path\": \"%s\", \"tokens\": %lld, \"vocab\": %lld, \"hidden\": %lld, \"chunk_rows\": %lld, "
                    "\"ms\": %.3f, \"unfused_ms\": %.3f, \"speedup_vs_unfused\": %.3f, \"matmul_lower_bound_ms\": "
                    "%.3f, \"ratio_to_matmul_bound\": %.3f, \"TFLOPs\": %.1f, \"fraction_of_measured_matmul_peak\": "
                    "%.3f, \"peak_extra_bytes\": %.0f, \"unfused_peak_extra_bytes\": %.0f, "
                    "\"memory_ratio_to_unfused\": %.4f}",
                    path, static_cast<long long>(tokens), static_cast<long long>(vocab),
                    static_cast<long long>(hidden), static_cast<long long>(chunk), ms, unfused_ms, unfused_ms / ms,
                    matmul_ms, ms / matmul_ms, flops / (ms * 1e-3) / 1e12,
                    flops / (ms * 1e-3) / ceilings.matmul_flops_per_second, bytes, unfused_bytes,
                    bytes / unfused_bytes);
      lm_head_records.push_back(line);
      std::cerr << line << "\n";
    }
  }
}

// ---------------------------------------------------------------- AdamW

std::string adamw_record;

// ATen's fused AdamW (what train/optimizer.cpp calls) against the textbook
// multi-tensor (_foreach) composition, over eight 2B layers' fp32 tensors,
// and against the bandwidth bound: each step must read weight, gradient and
// both moments and write weight and moments, 28 bytes per parameter.
void bench_adamw(const Ceilings& ceilings) {
  auto options = at::TensorOptions().device(at::kCUDA);
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
  const std::vector<std::vector<int64_t>> layer = {{2048, 2048}, {2048, 2048}, {2048, 2048}, {2048, 2048},
                                                   {5440, 2048}, {5440, 2048}, {2048, 5440}, {2048}, {2048}};
  double count = 0;
  for (int l = 0; l < 8; ++l)
    for (const auto& shape : layer) {
      params.push_back(at::randn(shape, options));
      grads.push_back(at::randn(shape, options) * 1e-3);
      exp_avgs.push_back(at::zeros(shape, options));
      exp_avg_sqs.push_back(at::zeros(shape, options));
      steps.push_back(at::ones({}, options));
      count += static_cast<double>(params.back().numel());
    }
  const double lr = 1e-5, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, decay = 0.01;
  const double fused = time_ms([&] {
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, lr, beta1, beta2, decay, eps, false, false);
  });
  const double bias1 = 1 - beta1, bias2 = std::sqrt(1 - beta2);  // step 1's corrections
  const double foreach = time_ms([&] {
    at::_foreach_lerp_(exp_avgs, grads, 1 - beta1);
    at::_foreach_mul_(exp_avg_sqs, beta2);
    at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
    at::_foreach_mul_(params, 1 - lr * decay);
    auto denom = at::_foreach_sqrt(exp_avg_sqs);
    at::_foreach_div_(denom, bias2);
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(params, exp_avgs, denom, -lr / bias1);
  });
  const double bytes = 28 * count;
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"parameters\": %.0f, \"tensors\": %zu, \"fused_ms\": %.3f, \"foreach_ms\": %.3f, "
                "\"fused_speedup_vs_foreach\": %.3f, \"bound_bytes\": %.0f, \"fused_GBps\": %.1f, "
                "\"fused_fraction_of_measured_copy\": %.3f, \"fused_fraction_of_peak\": %.3f}",
                count, params.size(), fused, foreach, foreach / fused, bytes, bytes / (fused * 1e-3) / 1e9,
                bytes / (fused * 1e-3) / ceilings.copy_bytes_per_second,
                bytes / (fused * 1e-3) / kPeakBytesPerSecond);
  adamw_record = line;
  std::cerr << line << "\n";
}

// "key": [record, ...] with one record per line.
std::string json_array(const char* key, const std::vector<std::string>& items) {
  std::string out = std::string("\"") + key + "\": [";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\n  " : "\n  ") + items[i];
  return out + "\n]";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iterations = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      std::stringstream list(argv[++i]);
      for (std::string name; std::getline(list, name, ',');) {
        if (kSections.count(name) == 0) {
          std::cerr << "bench_kernels: --only: unknown section '" << name
                    << "' (rms_norm, swiglu, rotary, chain, adamw, lora, lm_head)\n";
          return 2;
        }
        only.insert(name);
      }
    } else if (std::strcmp(argv[i], "--cpu-smoke") == 0) {
      // Small chained cases on the CPU (the fused ops' CPU formulas): checks
      // the benchmark's own code where there is no GPU.
      iterations = 2;
      bench_chained(at::kCPU, 64, {256}, {320});
      const auto lora = st::bench::bench_lora_projections({{"smoke", 64, 48}}, 32, 4, /*cuda=*/false, iterations);
      std::cout << "{\"gpu\": false, " << json_array("results", records) << ", "
                << json_array("lora_projection", lora) << "}\n";
      return 0;
    } else {
      std::cerr << "usage: bench_kernels [--iters N] [--only SECTION[,SECTION...]] [--cpu-smoke]"
                   " > bench_kernels.json\n";
      return 2;
    }
  }
  if (!at::hasCUDA()) {
    std::cerr << "bench_kernels: no CUDA device here; nothing to time (run it on the GPU machine, "
                 "scripts/gpu_check.sh)\n";
    std::cout << "{\"gpu\": false, \"results\": []}\n";
    return 0;
  }
  Ceilings ceilings{};
  std::vector<std::string> lora_records;
  auto print = [&](bool failed) {
    std::cout << "{\"gpu\": true, " << (failed ? "\"error\": \"see stderr\", " : "")
              << "\"peak_bytes_per_second\": " << kPeakBytesPerSecond << ", \"measured_copy_bytes_per_second\": "
              << ceilings.copy_bytes_per_second << ", \"measured_bf16_matmul_flops_per_second\": "
              << ceilings.matmul_flops_per_second << ", \"iterations\": " << iterations << ", "
              << json_array("results", records) << ", " << json_array("lm_head", lm_head_records) << ", "
              << json_array("lora_projection", lora_records)
              << ", \"adamw\": " << (adamw_record.empty() ? "null" : adamw_record) << "}\n";
  };
  try {
    ceilings = measure_ceilings();
    for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
      if (wanted("rms_norm"))
        for (int64_t hidden : {2048, 4096, 8192}) bench_rms_norm(dtype, hidden);
      if (wanted("swiglu"))
        for (int64_t ffn : {5440, 11008, 24576}) bench_swiglu(dtype, ffn);
      if (wanted("rotary"))
        for (auto [heads, kv_heads] : {std::pair{16, 16}, {32, 8}, {64, 8}}) bench_rotary(dtype, heads, kv_heads);
    }
    // The kernels' own bandwidth: with 8x the rows each call's GPU work
    // outlasts the engine's host work, which then hides behind it (at 8192
    // rows it does not for the small backward passes), and no operand fits
    // in the 50 MB L2.
    for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
      if (wanted("rms_norm"))
        for (int64_t hidden : {2048, 4096, 8192}) bench_rms_norm(dtype, hidden, kLargeTokens);
      if (wanted("rotary"))
        for (auto [heads, kv_heads] : {std::pair{16, 16}, {32, 8}, {64, 8}})
          bench_rotary(dtype, heads, kv_heads, kLargeTokens);
    }
    if (wanted("chain")) bench_chained(at::kCUDA, kTokens, {2048, 4096, 8192}, {5440, 11008});
    if (wanted("adamw")) bench_adamw(ceilings);
    if (wanted("lora"))
      lora_records = st::bench::bench_lora_projections(st::bench::salamandra_lora_shapes(), kTokens, 16,
                                                       /*cuda=*/true, iterations);
    if (wanted("lm_head")) {
      bench_lm_head(8192, 256000, 4096, {2048, 4096}, ceilings);
      bench_lm_head(8192, 256000, 2048, {1024, 2048, 4096}, ceilings);
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_kernels: " << e.what() << "\n";
    print(true);
    return 1;
  }
  print(false);
  return 0;
}
