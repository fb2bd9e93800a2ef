// The LoRA projection's test cases and their inputs, shared by the CPU test
// (lora_projection_test.cpp) and the GPU one (lora_projection_gpu_test.cpp).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "tests/kernels/kernel_test_util.h"

namespace st::lora_test {

struct Case {
  std::vector<int64_t> x_shape;  // [..., in]
  int64_t out, rank;
  bool bias, train_base;
};

struct Inputs {
  at::Tensor x, weight, bias, a, b, upstream;  // fp64 values exactly representable in `dtype`
};

/// Random inputs for `c` on the CPU, rounded through `dtype`, held as fp64.
inline Inputs make_inputs(const Case& c, at::ScalarType dtype) {
  const int64_t in = c.x_shape.back();
  auto r = [&](const at::Tensor& t) { return t.to(dtype).to(at::kDouble); };
  std::vector<int64_t> y_shape = c.x_shape;
  y_shape.back() = c.out;
  return {r(at::randn(c.x_shape)),
          r(at::randn({c.out, in}) / std::sqrt(static_cast<double>(in))),
          c.bias ? r(at::randn({c.out})) : at::Tensor(),
          r(at::randn({c.rank, in}) / std::sqrt(static_cast<double>(in))),
          r(at::randn({c.out, c.rank})),
          r(at::randn(y_shape))};
}

/// The same inputs on `device` (the GPU test compares them with the CPU's truth).
inline Inputs to_device(const Inputs& in, const at::Device& device) {
  auto d = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
  return {d(in.x), d(in.weight), d(in.bias), d(in.a), d(in.b), d(in.upstream)};
}

/// {y, dx, dA, dB[, dW][, db]} of `op` on leaves of `dtype`, on the inputs' device.
template <typename Op>
std::vector<at::Tensor> run(Op op, const Case& c, const Inputs& in, at::ScalarType dtype, double scale) {
  using kernel_test::leaf;
  at::Tensor x = leaf(in.x, dtype), a = leaf(in.a, dtype), b = leaf(in.b, dtype);
  at::Tensor w = in.weight.to(dtype), bias = c.bias ? in.bias.to(dtype) : at::Tensor();
  std::vector<at::Tensor> wrt = {x, a, b};
  if (c.train_base) {
    w.requires_grad_();
    wrt.push_back(w);
    if (c.bias) bias.requires_grad_(), wrt.push_back(bias);
  }
  at::Tensor y = op(x, w, bias, a, b, scale);
  std::vector<at::Tensor> out = {y.detach()};
  for (const at::Tensor& g : kernel_test::gradients({y}, {in.upstream.to(dtype)}, wrt)) out.push_back(g);
  return out;
}

/// Odd sizes, rank 1, bias and a trainable base, and the Salamandra widths.
inline const std::vector<Case> kCases = {
    {{5, 33}, 17, 4, false, false},     {{2, 3, 33}, 17, 1, true, true},    {{37, 64}, 48, 16, true, false},
    {{9, 2048}, 2048, 16, false, true}, {{3, 4096}, 1024, 8, false, false}, {{4, 2048}, 5440, 16, false, false},
    {{2, 5440}, 2048, 16, false, false}};

}  // namespace st::lora_test
