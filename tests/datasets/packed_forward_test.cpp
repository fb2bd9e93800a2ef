// Packed rows must not leak attention across documents: the logits of a
// packed batch (positions restarting per document, the document mask) equal
// the logits of each document run alone. Also for padded rows.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "datasets/batching.h"
#include "model/llama.h"
#include "tests/common/test_model.h"
#include "tests/datasets/packed_forward_cases.h"

namespace st {
namespace {

ModelConfig small_config() { return test::small_model_config(97); }

using test::Docs;
using test::random_docs;

// Each document's logits inside the batch equal its logits alone.
void expect_batch_equals_documents(const LlamaModel& model, const datasets::BatchLayout& layout, const Docs& docs,
                                   const datasets::BatchOptions& options, double atol) {
  const auto pairs = test::packed_and_alone_logits(model, layout, docs, options);
  for (size_t d = 0; d < pairs.size(); ++d)
    EXPECT_LE((pairs[d].first - pairs[d].second).abs().max().item<double>(), atol) << "document " << d;
}

class PackedForward : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(PackedForward, PackedRowsEqualDocumentsAlone) {
  LlamaModel model(small_config(), at::TensorOptions().dtype(GetParam()));
  model.init_random(21);
  const test::Packing packing = test::seven_documents_in_two_rows(97);
  ASSERT_EQ(packing.layout.rows.size(), 2u);  // 43 tokens in two rows of 24, one with padding
  // fp32: the same sums in another order (longer rows) stay within 1e-5,
  // the project's fp32 agreement; fp64 shows the structure is exact.
  const double atol = GetParam() == at::kDouble ? 1e-12 : 1e-5;
  expect_batch_equals_documents(model, packing.layout, packing.docs, packing.options, atol);
}

TEST_P(PackedForward, PaddedRowsEqualDocumentsAlone) {
  LlamaModel model(small_config(), at::TensorOptions().dtype(GetParam()));
  model.init_random(22);
  const Docs docs = random_docs({5, 9, 3}, 97);
  const datasets::BatchOptions options{.mode = datasets::BatchMode::kPadded, .row_tokens = 16, .rows = 3};
  const double atol = GetParam() == at::kDouble ? 1e-12 : 1e-5;
  expect_batch_equals_documents(model, datasets::BatchLayout{{{0}, {1}, {2}}}, docs, options, atol);
}

TEST(DocumentMask, CausalWithinDocumentsOnly) {
  const at::Tensor document = at::tensor(std::vector<int64_t>{0, 0, 1, 1, 1, -1}, at::kLong).view({1, 6});
  const at::Tensor mask = document_attention_mask(document)[0][0];
  const bool expected[6][6] = {{1, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0},
                               {0, 0, 1, 1, 0, 0}, {0, 0, 1, 1, 1, 0}, {0, 0, 0, 0, 0, 1}};
  for (int q = 0; q < 6; ++q)
    for (int k = 0; k < 6; ++k) EXPECT_EQ(mask[q][k].item<bool>(), expected[q][k]) << q << "," << k;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PackedForward, ::testing::Values(at::kDouble, at::kFloat));

}  // namespace
}  // namespace st
