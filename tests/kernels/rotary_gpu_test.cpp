// GPU (label gpu): the fused in-place rotary kernel against the ATen
// reference for the 2B/7B/40B attention shapes and odd heads, fp32 and bf16,
// packed position ids (and one row shared by the batch, and a long packed
// sequence), q/k as views of the projections' [B, T, heads, D] output and as
// contiguous [B, heads, T, D]: values and the gradients. Rule: at most 2x the
// reference's error against the fp64 truth. Skips cleanly without a CUDA device.
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "kernels/rotary_op.h"
#include "tests/kernels/kernel_test_util.h"

namespace st {
namespace {

using namespace kernel_test;

struct Case {
  at::Tensor q, k, dq, dk, positions, inverse_frequencies;  // q, k in [B, T, heads, D]
};

Case make_case(const AttentionShape& s, at::ScalarType dtype, const at::Tensor& positions, int64_t batch) {
  auto make = [&](at::Tensor t) { return t.to(dtype).to(at::kDouble).to(at::kCUDA); };
  const int64_t steps = positions.size(1);
  return {make(at::randn({batch, steps, s.heads, s.head_dim})),
          make(at::randn({batch, steps, s.kv_heads, s.head_dim})),
          make(at::randn({batch, s.heads, steps, s.head_dim})),
          make(at::randn({batch, s.kv_heads, steps, s.head_dim})),
          positions.to(at::kCUDA),
          inverse_frequencies(s.head_dim, at::kCUDA)};
}

// With `projection_layout`, q and k are transposed views of [B, T, heads, D]
// (strided, as the attention makes them); else contiguous [B, heads, T, D].
template <typename Op>
std::vector<at::Tensor> run(Op op, const Case& c, at::ScalarType dtype, bool projection_layout) {
  at::Tensor q_leaf = leaf(c.q, dtype), k_leaf = leaf(c.k, dtype);
  // Always a copy: contiguous() would return the leaf's own view when the
  // transpose is already contiguous (one head), and the op rotates in place.
  at::Tensor q = projection_layout ? q_leaf.clone().transpose(1, 2)
                                   : q_leaf.transpose(1, 2).clone(at::MemoryFormat::Contiguous);
  at::Tensor k = projection_layout ? k_leaf.clone().transpose(1, 2)
                                   : k_leaf.transpose(1, 2).clone(at::MemoryFormat::Contiguous);
  auto [q_rot, k_rot] = op(q, k, c.positions, c.inverse_frequencies);
  auto grads = gradients({q_rot, k_rot}, {c.dq, c.dk}, {q_leaf, k_leaf});
  return {q_rot, k_rot, grads[0], grads[1]};
}

const char* kNames[] = {"q", "k", "dq", "dk"};

auto plain_op = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& p, const at::Tensor& f) {
  return std::pair{plain_rotary(q, p, f), plain_rotary(k, p, f)};
};
auto fused_op = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& p, const at::Tensor& f) {
  EXPECT_TRUE(fused_rotary_applies(q, k, p, f));
  return fused_rotary_(q, k, p, f);
};

void check(const Case& c, at::ScalarType dtype, bool projection_layout, const std::string& what) {
  auto truth = run(plain_op, c, at::kDouble, projection_layout);
  auto ref = run(rotary_reference, c, dtype, projection_layout);
  auto ours = run(fused_op, c, dtype, projection_layout);
  for (size_t i = 0; i < truth.size(); ++i)
    EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(ref[i], truth[i]))
        << kNames[i] << " " << dtype << " " << what << " projection layout " << projection_layout;
}

TEST(FusedRotaryGpu, MatchesReferenceWithinTwiceItsError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(0);
  const at::Tensor packed = packed_positions(at::kCPU);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const auto& shape : kAttentionShapes) {
      for (bool projection_layout : {true, false}) {
        const std::string what = "heads " + std::to_string(shape.heads) + "/" + std::to_string(shape.kv_heads) +
                                 " head_dim " + std::to_string(shape.head_dim);
        check(make_case(shape, dtype, packed, 2), dtype, projection_layout, what + " packed");
        check(make_case(shape, dtype, packed.narrow(0, 1, 1), 2), dtype, projection_layout, what + " shared row");
      }
    }
  }
}

TEST(FusedRotaryGpu, LongPackedSequence) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(1);
  // 2048 steps of documents of 700 tokens, offset so positions reach 8191.
  at::Tensor positions = (at::arange(2048, at::kLong) % 700 + 7491).view({1, 2048});
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16})
    check(make_case({32, 8, 128}, dtype, positions, 1), dtype, true, "7B 2048 steps");
}

TEST(FusedRotaryGpu, RotatesInPlaceWithoutGradients) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  auto options = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::Tensor q = at::randn({2, 7, 4, 128}, options).transpose(1, 2), k = at::randn({2, 7, 2, 128}, options).transpose(1, 2);
  at::Tensor positions = packed_positions(at::kCUDA), freqs = inverse_frequencies(128, at::kCUDA);
  auto expected = rotary_reference(q.to(at::kDouble), k.to(at::kDouble), positions, freqs);
  at::NoGradGuard no_grad;
  auto [q_out, k_out] = fused_rotary_(q, k, positions, freqs);
  EXPECT_EQ(q_out.data_ptr(), q.data_ptr());
  EXPECT_EQ(k_out.data_ptr(), k.data_ptr());
  EXPECT_LE(max_error(q, expected.first), 0.0625);
  EXPECT_LE(max_error(k, expected.second), 0.0625);
}

}  // namespace
}  // namespace st
