// GPU (label gpu): packing on CUDA. The logits of each document inside a
// packed batch (positions restarting per document, the document mask, the
// fused rotary kernel's packed positions) against the same document run
// alone, with the fused kernels on and off. Rule (kernel_test_util.h,
// allowed_error): the packed fp32 logits' error against the fp64 truth is at
// most 2x the error of the documents run alone in fp32; in fp64 they agree
// to rounding. Skips
// cleanly without a CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "kernels/fused_switch.h"
#include "tests/common/test_model.h"
#include "tests/datasets/packed_forward_cases.h"
#include "tests/kernels/kernel_test_util.h"

namespace st {
namespace {

// The fp32 model's weights are the fp64 model's, rounded (parameter()
// throws for a name the source lacks).
void copy_weights(const LlamaModel& from, LlamaModel& to) {
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : to.checkpoint_tensors()) tensor.copy_(from.parameter(name));
}

TEST(PackedForwardGpu, PackedEqualsAloneWithinTwiceTheFp32Error) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const ModelConfig config = test::small_model_config(97);
  LlamaModel model64(config, at::TensorOptions().dtype(at::kDouble).device(at::kCUDA));
  model64.init_random(21);
  LlamaModel model32(config, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  copy_weights(model64, model32);
  const test::Packing packing = test::seven_documents_in_two_rows(97);
  const test::Docs& docs = packing.docs;
  ASSERT_EQ(packing.layout.rows.size(), 2u);

  // fp64 (the kernels take fp32 and bf16 only): the structure is exact.
  const auto truth = test::packed_and_alone_logits(model64, packing.layout, docs, packing.options);
  for (size_t d = 0; d < truth.size(); ++d)
    EXPECT_LE((truth[d].first - truth[d].second).abs().max().item<double>(), 1e-12) << "fp64 document " << d;

  for (bool kernels : {true, false}) {
    const auto fp32 = [&] {
      ScopedFusedKernels scoped(kernels);
      return test::packed_and_alone_logits(model32, packing.layout, docs, packing.options);
    }();
    std::vector<at::Tensor> packed, alone, exact;
    for (size_t d = 0; d < fp32.size(); ++d) {
      packed.push_back(fp32[d].first);
      alone.push_back(fp32[d].second);
      exact.push_back(truth[d].second);
    }
    const at::Tensor truth_all = at::cat(exact);
    EXPECT_LE(kernel_test::max_error(at::cat(packed), truth_all), kernel_test::allowed_error(at::cat(alone), truth_all))
        << "kernels " << (kernels ? "on" : "off");
  }
}

}  // namespace
}  // namespace st
