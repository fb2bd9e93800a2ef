// The recipe keys of the data stage ([model] path and [data]), declared
// once, and the typed configuration read from them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/recipe.h"
#include "datasets/batching.h"
#include "datasets/readers.h"
#include "datasets/sample_encoder.h"

namespace st::datasets {

/// model.path and every data.* key, with defaults and help.
RecipeSchema data_schema();

struct DataConfig {
  std::string model_dir;
  std::vector<std::string> train_files, eval_files;
  double eval_ratio{};
  uint64_t seed{};
  ReaderOptions reader;
  std::string chat_template_file;  // "" : the model dir's template
  std::map<std::string, std::string> template_vars;
  EncoderOptions encoder;
  bool packing{};
  uint32_t bucket_window{};
  std::string cache_dir;
  int workers{};  // resolved: 0 in the recipe means all cores
  /// Canonical text of everything above that changes the tokens, for cache keys.
  std::string canonical_options;
};

/// Reads the data keys of a loaded recipe (validated already by its schema).
DataConfig data_config(const Recipe& recipe);

/// Packing or padding of rows of max_length tokens, `rows` per micro-batch,
/// `accumulation` micro-batches per optimizer step.
BatchOptions batch_options(const DataConfig& config, uint32_t rows, uint32_t accumulation = 1);

}  // namespace st::datasets
