// A model dir (with adapters merged on the way, or none) as a complete
// Hugging Face dir that transformers and vLLM load: sharded safetensors
// with an index, config.json with the dtype, generation_config.json and the
// tokenizer files and chat template carried unchanged, and a README.md
// model card (model/model_card.h) naming the base model, the data files
// with their SHA-256, the recipe and the final metrics of every stage that
// made it.
//
// The weights are merge's (lora/merge.h): streamed from the mapped source
// in blocks of rows, adapters added in fp32 and rounded once, every tensor
// read back against a checksum of the bytes written; with adapters, merge's
// logit self-check runs too. The dir is staged and renamed into place.
#pragma once

#include <ATen/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lora/merge.h"

namespace st::hf {

struct ExportOptions {
  std::string model_dir;
  std::vector<lora::WeightedAdapter> adapters;
  std::string out_dir;
  at::ScalarType dtype = at::kBFloat16;
  uint64_t max_shard_bytes = 5ull << 30;  // transformers' default max_shard_size
  bool force = false;                     // replace an existing out_dir
  std::function<void(uint64_t written, uint64_t total)> progress;  // as merge's
};

struct ExportReport {
  lora::MergeReport merge;
  int64_t stages = 0;  // training records found for the model card
};

ExportReport export_hf(const ExportOptions& options);

}  // namespace st::hf
