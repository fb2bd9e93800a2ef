#include "model/document_mask.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/eq.h>
#include <ATen/ops/ge.h>
#include <ATen/ops/logical_and.h>
#include <ATen/ops/logical_or.h>
#include <ATen/ops/lt.h>

#include "common/error.h"

namespace st {

at::Tensor document_attention_mask(const at::Tensor& document) {
  ST_CHECK(document.dim() == 2, "document ids must be [B, T]");
  const int64_t steps = document.size(1);
  const at::Tensor positions = at::arange(steps, document.options().dtype(at::kLong));
  const at::Tensor query_doc = document.unsqueeze(2);  // [B, T, 1]
  const at::Tensor key_doc = document.unsqueeze(1);    // [B, 1, T]
  const at::Tensor causal = positions.unsqueeze(1).ge(positions.unsqueeze(0));  // [T, T], key <= query
  at::Tensor mask = query_doc.eq(key_doc).logical_and(query_doc.ge(0)).logical_and(causal);
  const at::Tensor diagonal = positions.unsqueeze(1).eq(positions.unsqueeze(0));
  mask = mask.logical_or(query_doc.lt(0).logical_and(diagonal));
  return mask.unsqueeze(1);
}

}  // namespace st
