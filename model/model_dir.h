// Hugging Face model directories: config.json, generation_config.json and
// weights as model.safetensors or sharded model-0000i-of-0000n.safetensors
// with model.safetensors.index.json. Loading copies each tensor from the
// memory-mapped file straight into the model's parameter and then drops the
// file pages, so at no point are two copies of the weights held.
#pragma once

#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>
#include <memory>
#include <string>

#include "model/generation.h"
#include "model/llama.h"
#include "model/safetensors.h"

namespace st {

/// The ATen dtype of a stored floating-point tensor (F32, BF16, F16, F64);
/// st::Error naming `where` for any other.
at::ScalarType to_scalar_type(safetensors::DType dtype, const std::string& where);
/// A tensor of an open safetensors file as an ATen tensor over its mapping,
/// or a copy when the mapping is not aligned for its element type (the
/// format only promises byte alignment). Valid while the file is open and
/// its pages are not released; errors name `path` and the tensor.
at::Tensor stored_tensor(const safetensors::TensorInfo& info, const std::string& path);
/// The stored dtype of an ATen floating-point dtype; st::Error for others.
safetensors::DType to_dtype(at::ScalarType type);

/// config.json's torch_dtype name of a weight dtype ("bfloat16", ...).
std::string dtype_config_name(at::ScalarType type);

/// The safetensors files of a model dir, and (for a sharded one) which file
/// holds which tensor; a single model.safetensors is preferred over an
/// index, as transformers does. st::Error when DIR has neither.
struct WeightFiles {
  std::filesystem::path index_path;
  std::vector<std::string> files;
  std::map<std::string, std::string> where;  // tensor -> file path; empty for a single file
};
WeightFiles weight_files(const std::string& dir);

/// Reads DIR/config.json; errors name the file.
ModelConfig load_model_config(const std::string& dir);

/// Builds the model described by DIR/config.json and fills it from the
/// safetensors weights, converting to `options` (dtype, device). Every
/// expected tensor must be present with its exact shape; unexpected tensors
/// are errors (naming file and tensor), except transformers' non-persistent
/// rotary buffers that old checkpoints carry.
std::unique_ptr<LlamaModel> load_model(const std::string& dir, const at::TensorOptions& options);

/// Fills an existing model's checkpoint tensors (role kBase, parameter.h)
/// from DIR's safetensors, with the same checks as load_model; adapters and
/// buffers are left as they are, so a base checkpoint loads into a model
/// whose projections carry adapters. DIR's config.json is not read: the
/// shapes are the model's.
void load_weights(const std::string& dir, LlamaModel& model);

/// Whether every weight tensor in DIR's safetensors is stored as `dtype`
/// (read from the headers only).
bool weights_stored_as(const std::string& dir, at::ScalarType dtype);

/// Decoding defaults from DIR/generation_config.json, when present, on top of
/// the model config's eos id.
GenerationSettings load_generation_settings(const std::string& dir, const ModelConfig& config);

/// How weights are written.
struct SaveOptions {
  /// dtype of the stored tensors (config.json's torch_dtype follows it).
  at::ScalarType dtype = at::kBFloat16;
  /// transformers' max_shard_size; a model above it is sharded with an index.
  uint64_t max_shard_bytes = 5ull << 30;
};

/// Writes DIR/config.json (torch_dtype set to `dtype`) and a
/// generation_config.json with the config's special ids; creates DIR.
void write_model_configs(const ModelConfig& config, const std::string& dir, at::ScalarType dtype);

/// Writes config.json, generation_config.json and the checkpoint tensors
/// (role kBase: never adapters or buffers) into DIR
/// (created if needed). Each file is written atomically.
void save_model(const LlamaModel& model, const std::string& dir, const SaveOptions& options = {});

/// Copies, byte for byte, the files of a model dir that are neither weights
/// nor config.json: the tokenizer's (kTokenizerFiles: tokenizer.json,
/// tokenizer.model, tokenizer_config.json, special_tokens_map.json, ...) and
/// generation_config.json, those present. Every model dir we write carries
/// them, so that it tokenizes and generates as its source did; call it after
/// save_model, whose generation_config.json it replaces. Refuses a source
/// with neither tokenizer.json nor tokenizer.model.
void copy_model_dir_files(const std::string& from_dir, const std::string& to_dir);

}  // namespace st
