// Merging adapters into a base model's weights: a complete HF model dir
// whose projections are W + sum_i w_i dW_i (dW of adapter_delta: s B A, or
// DoRA's rescaled weight minus W), added in fp32 and rounded once to the
// output dtype. PEFT adds the delta in the base's dtype, and that extra bf16
// rounding shifts the loss (peft#1388).
//
// Memory stays bounded: the base's safetensors are memory-mapped and read
// tensor by tensor and in blocks of rows (lora/merged_weights.h), each
// block merged and converted alone and streamed into the output shards
// (safetensors::write_sharded with a TensorSource), so one block is held at
// a time, never a tensor's copy or the model's. Only the adapters (small)
// are read whole. Every tensor is read back from the file being written,
// while the next ones are written, against a checksum of the bytes handed
// to the writer (common/checksum.h); then every file's header.
//
// Then merge checks itself, before the dir gets its name: it runs a probe
// batch through the base with the adapters applied unmerged (LoraLinear's
// forward in fp32, each adapter at its weight) and through the merged dir
// (read in fp32), and requires the largest logit difference to stay within
//   2 x (the logit change that rounding the merged weights to the output
//        dtype makes: measured on the same model merged in memory in fp32,
//        then rounded)  +  1e-5 x max(1, max |logit|)
// (the first term is zero for fp32 output; the second is fp32's agreement
// bound of our parity tests; the factor 2 is our parity tests' rule for
// low precision). A failure leaves no output dir.
#pragma once

#include <ATen/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lora/merged_weights.h"

namespace st::lora {

struct MergeOptions {
  std::string base_dir;
  std::vector<WeightedAdapter> adapters;
  std::string out_dir;
  at::ScalarType dtype = at::kBFloat16;  // of the written weights
  uint64_t max_shard_bytes = 5ull << 30;  // transformers' default max_shard_size
  bool force = false;                     // replace an existing out_dir
  bool self_check = true;
  /// More files for the dir (name -> contents), written before it gets its
  /// name (export's model card).
  std::map<std::string, std::string> extra_files;
  /// Called after each tensor with the bytes of weights written so far and
  /// in all.
  std::function<void(uint64_t written, uint64_t total)> progress;
};

struct MergeReport {
  int64_t tensors = 0;         // written
  int64_t merged_tensors = 0;  // of which carry a delta
  uint64_t bytes_verified = 0;  // read back from the written files against the bytes written
  std::string tokenizer_from;  // the dir the tokenizer files were copied from
  // The self-check (when run).
  bool checked = false;
  double max_logit_difference = 0;
  double bound = 0;
  double rounding_effect = 0;  // the logit change from rounding the merged weights to the dtype
  int64_t probe_tokens = 0;
};

/// Writes the merged model dir (with no adapters: the base converted to
/// the dtype); st::Error names the file or tensor for bad input (an adapter
/// that does not fit the base, a missing file, an existing out_dir without
/// force) and for a failed self-check.
MergeReport merge_adapters(const MergeOptions& options);

}  // namespace st::lora
