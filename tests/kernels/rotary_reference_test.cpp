// CPU (unit): the rotary reference and the fused in-place op's hand-written
// backward (its ATen formulas, the CPU side of the autograd function) against
// a plain autograd composition in fp64, with packed position ids (documents
// restart at 0) and the 2B/7B/40B attention shapes. q and k enter as views of
// a [B, T, heads, head_dim] projection output, as the attention makes them,
// so the in-place autograd path (mark_dirty on a view) is what is tested.
// The kernel itself is tested in rotary_gpu_test.cpp.
#include <gtest/gtest.h>

#include <ATen/core/grad_mode.h>

#include "common/error.h"
#include "kernels/rotary_op.h"
#include "tests/kernels/kernel_test_util.h"

namespace st {
namespace {

using namespace kernel_test;

// Inputs in the projections' [B, T, heads, D] layout, rounded to the dtype under test.
struct Case {
  at::Tensor q, k, dq, dk, positions, inverse_frequencies;
};

Case make_case(const AttentionShape& s, at::ScalarType dtype, bool shared_positions) {
  auto round = [&](const at::Tensor& t) { return t.to(dtype).to(at::kDouble); };
  at::Tensor positions = packed_positions(at::kCPU);
  const int64_t batch = positions.size(0), steps = positions.size(1);
  if (shared_positions) positions = positions.narrow(0, 1, 1);  // one row for the whole batch
  return {round(at::randn({batch, steps, s.heads, s.head_dim})),
          round(at::randn({batch, steps, s.kv_heads, s.head_dim})),
          round(at::randn({batch, s.heads, steps, s.head_dim})),
          round(at::randn({batch, s.kv_heads, steps, s.head_dim})),
          positions,
          inverse_frequencies(s.head_dim, at::kCPU)};
}

// {q', k', dq, dk} of `op(q, k, positions, inverse_frequencies)`; gradients
// are with respect to the [B, T, heads, D] leaves (returned in that layout).
template <typename Op>
std::vector<at::Tensor> run(Op op, const Case& c, at::ScalarType dtype) {
  at::Tensor q_leaf = leaf(c.q, dtype), k_leaf = leaf(c.k, dtype);
  at::Tensor q = q_leaf.clone().transpose(1, 2), k = k_leaf.clone().transpose(1, 2);
  auto [q_rot, k_rot] = op(q, k, c.positions, c.inverse_frequencies);
  auto grads = gradients({q_rot, k_rot}, {c.dq, c.dk}, {q_leaf, k_leaf});
  return {q_rot, k_rot, grads[0], grads[1]};
}

auto plain_op = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& p, const at::Tensor& f) {
  return std::pair{plain_rotary(q, p, f), plain_rotary(k, p, f)};
};

const char* kNames[] = {"q", "k", "dq", "dk"};

TEST(RotaryReference, MatchesPlainAutogradInFp32) {
  at::manual_seed(21);
  for (const auto& shape : kAttentionShapes) {
    for (bool shared : {false, true}) {
      Case c = make_case(shape, at::kFloat, shared);
      auto truth = run(plain_op, c, at::kDouble);
      auto ours = run(rotary_reference, c, at::kFloat);
      for (size_t i = 0; i < truth.size(); ++i) {
        const double scale = std::max(1.0, truth[i].abs().max().item<double>());
        EXPECT_LE(max_error(ours[i], truth[i]), 1e-5 * scale) << kNames[i] << " head_dim " << shape.head_dim;
      }
    }
  }
}

TEST(RotaryFused, BackwardFormulasMatchInFp64) {
  // Both the reference and the fused op take cos/sin in fp32 (the tables'
  // precision), so in fp64 they agree to roundoff; the plain composition
  // takes cos/sin in fp64, which differs by fp32 roundoff of the tables.
  at::manual_seed(22);
  for (const auto& shape : kAttentionShapes) {
    for (bool shared : {false, true}) {
      Case c = make_case(shape, at::kDouble, shared);
      auto truth = run(plain_op, c, at::kDouble);
      auto reference = run(rotary_reference, c, at::kDouble);
      auto ours = run(fused_rotary_, c, at::kDouble);
      for (size_t i = 0; i < truth.size(); ++i) {
        const double scale = std::max(1.0, truth[i].abs().max().item<double>());
        EXPECT_LE(max_error(ours[i], reference[i]), 1e-12 * scale) << kNames[i] << " head_dim " << shape.head_dim;
        EXPECT_LE(max_error(ours[i], truth[i]), 1e-6 * scale) << kNames[i] << " head_dim " << shape.head_dim;
      }
    }
  }
}

TEST(RotaryFused, LowPrecisionWithinTwiceTheReferenceError) {
  at::manual_seed(23);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const auto& shape : kAttentionShapes) {
      Case c = make_case(shape, dtype, false);
      auto truth = run(plain_op, c, at::kDouble);
      auto reference = run(rotary_reference, c, dtype);
      auto ours = run(fused_rotary_, c, dtype);
      for (size_t i = 0; i < truth.size(); ++i)
        EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(reference[i], truth[i]))
            << kNames[i] << " " << dtype << " head_dim " << shape.head_dim;
    }
  }
}

TEST(RotaryFused, RotatesInPlace) {
  at::Tensor q = at::randn({1, 2, 7, 8}), k = at::randn({1, 1, 7, 8});
  at::Tensor positions = packed_positions(at::kCPU).narrow(0, 0, 1), freqs = inverse_frequencies(8, at::kCPU);
  auto expected = rotary_reference(q, k, positions, freqs);
  at::NoGradGuard no_grad;
  auto [q_out, k_out] = fused_rotary_(q, k, positions, freqs);
  EXPECT_EQ(q_out.data_ptr(), q.data_ptr());
  EXPECT_EQ(k_out.data_ptr(), k.data_ptr());
  EXPECT_LE(max_error(q, expected.first), 1e-6);
  EXPECT_LE(max_error(k, expected.second), 1e-6);
}

TEST(RotaryFused, RejectsMismatchedInputs) {
  at::Tensor positions = at::zeros({1, 4}, at::kLong), freqs = inverse_frequencies(8, at::kCPU);
  EXPECT_THROW(fused_rotary_(at::randn({1, 2, 4, 8}), at::randn({1, 1, 4, 6}), positions, freqs), Error);
  EXPECT_THROW(fused_rotary_(at::randn({1, 2, 4, 8}), at::randn({1, 1, 4, 8}), at::zeros({1, 5}, at::kLong), freqs),
               Error);
  EXPECT_THROW(fused_rotary_(at::randn({1, 2, 4, 8}), at::randn({1, 1, 4, 8}), positions.to(at::kFloat), freqs), Error);
  EXPECT_THROW(fused_rotary_(at::randn({1, 2, 4, 7}), at::randn({1, 1, 4, 7}), positions, freqs), Error);
}

TEST(RotaryDispatch, CpuAlwaysTakesTheReference) {
  at::Tensor q = at::randn({2, 2, 7, 8}), k = at::randn({2, 1, 7, 8});
  at::Tensor positions = packed_positions(at::kCPU), freqs = inverse_frequencies(8, at::kCPU);
  RotaryTables tables = rotary_tables(freqs, positions, at::kFloat);
  auto chosen = apply_rotary_qk(q, k, tables);
  EXPECT_TRUE(at::equal(chosen.first, apply_rotary(q, tables)));
  EXPECT_TRUE(at::equal(chosen.second, apply_rotary(k, tables)));
  EXPECT_FALSE(fused_rotary_applies(q, k, positions, freqs));
}

}  // namespace
}  // namespace st
