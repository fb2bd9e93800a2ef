#include "model/model_dir.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"
#include "model/safetensors.h"

namespace st {
namespace fs = std::filesystem;
namespace sf = safetensors;

at::ScalarType to_scalar_type(sf::DType dtype, const std::string& where) {
  switch (dtype) {
    case sf::DType::F32: return at::kFloat;
    case sf::DType::BF16: return at::kBFloat16;
    case sf::DType::F16: return at::kHalf;
    case sf::DType::F64: return at::kDouble;
    default: fail(where, ": dtype ", sf::dtype_name(dtype), " is not a floating-point weight dtype (F32, BF16, F16, F64)");
  }
}

at::Tensor stored_tensor(const sf::TensorInfo& info, const std::string& path) {
  const at::ScalarType type = to_scalar_type(info.dtype, cat(path, ": tensor \"", info.name, "\""));
  if (reinterpret_cast<uintptr_t>(info.data) % sf::dtype_size(info.dtype) == 0)
    return at::from_blob(const_cast<std::byte*>(info.data), info.shape, at::TensorOptions().dtype(type));
  at::Tensor copy = at::empty(info.shape, at::TensorOptions().dtype(type));
  std::memcpy(copy.data_ptr(), info.data, info.nbytes);
  return copy;
}

sf::DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return sf::DType::F32;
    case at::kBFloat16: return sf::DType::BF16;
    case at::kHalf: return sf::DType::F16;
    case at::kDouble: return sf::DType::F64;
    default: fail("cannot store weights of dtype ", c10::toString(type));
  }
}

std::string dtype_config_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: fail("cannot store weights of dtype ", c10::toString(type));
  }
}

namespace {

// transformers never saves these, but checkpoints converted by old versions do.
bool is_ignorable_buffer(const std::string& name) {
  return name.ends_with(".self_attn.rotary_emb.inv_freq");
}

}  // namespace

ModelConfig load_model_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  if (!fs::is_directory(dir)) fail(dir, ": not a model directory (it does not exist or is not a directory)");
  if (!fs::exists(path)) fail(path, ": missing (a Hugging Face model directory needs config.json)");
  return ModelConfig::load(path);
}

std::unique_ptr<LlamaModel> load_model(const std::string& dir, const at::TensorOptions& options) {
  auto model = std::make_unique<LlamaModel>(load_model_config(dir), options);
  load_weights(dir, *model);
  return model;
}

WeightFiles weight_files(const std::string& dir) {
  WeightFiles w;
  w.index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  if (fs::exists(single_path)) {
    w.files.push_back(single_path.string());
  } else if (fs::exists(w.index_path)) {
    for (auto& [tensor, file] : sf::read_index(w.index_path.string()))
      w.where[tensor] = (fs::path(dir) / file).string();
    std::set<std::string> unique;
    for (auto& [tensor, file] : w.where) unique.insert(file);
    w.files.assign(unique.begin(), unique.end());
  } else {
    fail(dir, ": no weights (expected model.safetensors or model.safetensors.index.json)");
  }
  return w;
}

bool weights_stored_as(const std::string& dir, at::ScalarType dtype) {
  for (const std::string& path : weight_files(dir).files) {
    if (!fs::exists(path)) return false;  // load_weights names the missing shard
    sf::File file(path);
    for (const sf::TensorInfo& info : file.tensors())
      if (!is_ignorable_buffer(info.name) && to_scalar_type(info.dtype, path) != dtype) return false;
  }
  return true;
}

void load_weights(const std::string& dir, LlamaModel& model) {
  const ModelConfig& config = model.config();
  auto [index_path, files, where] = weight_files(dir);

  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> expected;
  for (auto& [name, tensor] : model.checkpoint_tensors()) expected[name] = tensor;
  std::set<std::string> loaded;
  for (const std::string& path : files) {
    if (!fs::exists(path)) fail(index_path.string(), ": names shard ", fs::path(path).filename().string(), " which does not exist");
    sf::File file(path);
    for (const sf::TensorInfo& info : file.tensors()) {
      if (!where.empty() && where.count(info.name) && where[info.name] != path)
        fail(path, ": tensor \"", info.name, "\" is indexed in another shard (", where[info.name], ")");
      if (is_ignorable_buffer(info.name)) continue;
      if (config.tie_word_embeddings && info.name == "lm_head.weight") continue;
      auto it = expected.find(info.name);
      if (it == expected.end())
        fail(path, ": unexpected tensor \"", info.name, "\" (not part of a Llama model with this config.json)");
      if (loaded.count(info.name)) fail(path, ": tensor \"", info.name, "\" appears in two shards");
      at::Tensor& target = it->second;
      std::vector<int64_t> want(target.sizes().begin(), target.sizes().end());
      if (info.shape != want)
        fail(path, ": tensor \"", info.name, "\" has shape ", at::IntArrayRef(info.shape), ", expected ",
             at::IntArrayRef(want), " from config.json");
      const at::Tensor source = stored_tensor(info, path);
      // Copy in blocks of rows and drop each block's file pages right away,
      // so even the 1 GB embedding of a 2B model is never held twice.
      const int64_t rows = info.shape.empty() ? 1 : info.shape[0];
      const size_t row_bytes = rows > 0 ? info.nbytes / static_cast<size_t>(rows) : 0;
      const int64_t block = std::max<int64_t>(1, static_cast<int64_t>((64u << 20) / std::max<size_t>(row_bytes, 1)));
      if (info.shape.empty() || rows <= block) {
        target.copy_(source);
      } else {
        for (int64_t start = 0; start < rows; start += block) {
          const int64_t n = std::min(block, rows - start);
          target.narrow(0, start, n).copy_(source.narrow(0, start, n));
          sf::TensorInfo copied = info;
          copied.data = info.data + static_cast<size_t>(start) * row_bytes;
          copied.nbytes = static_cast<size_t>(n) * row_bytes;
          file.release(copied);
        }
      }
      file.release(info);
      loaded.insert(info.name);
    }
  }
  for (auto& [name, tensor] : expected)
    if (!loaded.count(name))
      fail(dir, ": missing tensor \"", name, "\" (", files.size() == 1 ? files[0] : index_path.string(),
           " does not provide it)");
  if (!where.empty())
    for (auto& [tensor, file] : where)
      if (!loaded.count(tensor) && !is_ignorable_buffer(tensor) &&
          !(config.tie_word_embeddings && tensor == "lm_head.weight"))
        fail(index_path.string(), ": indexes tensor \"", tensor, "\" but ", file, " does not contain it");
}

GenerationSettings load_generation_settings(const std::string& dir, const ModelConfig& config) {
  GenerationSettings settings;
  settings.stop_ids.push_back(config.eos_token_id);
  const std::string path = (fs::path(dir) / "generation_config.json").string();
  if (fs::exists(path)) {
    nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
    if (j.is_discarded()) fail(path, ": malformed JSON");
    settings.apply_json(j, path);
  }
  return settings;
}

void write_model_configs(const ModelConfig& model_config, const std::string& dir, at::ScalarType dtype) {
  fs::create_directories(dir);
  ModelConfig config = model_config;
  config.torch_dtype = dtype_config_name(dtype);
  write_file_atomic((fs::path(dir) / "config.json").string(), config.to_json().dump(2) + "\n");
  nlohmann::json generation = {{"bos_token_id", config.bos_token_id}, {"eos_token_id", config.eos_token_id}};
  if (config.pad_token_id) generation["pad_token_id"] = *config.pad_token_id;
  write_file_atomic((fs::path(dir) / "generation_config.json").string(), generation.dump(2) + "\n");
}

void save_model(const LlamaModel& model, const std::string& dir, const SaveOptions& options) {
  at::NoGradGuard no_grad;
  write_model_configs(model.config(), dir, options.dtype);

  // Converted copies live until the files are written; tensors already in
  // the storage dtype on the CPU are written from the parameters themselves.
  std::vector<at::Tensor> storage;
  std::vector<sf::TensorToWrite> tensors;
  for (auto& [name, tensor] : model.checkpoint_tensors()) {
    at::Tensor cpu = tensor.detach().to(at::kCPU, options.dtype).contiguous();
    storage.push_back(cpu);
    tensors.push_back({name, to_dtype(options.dtype),
                       std::vector<int64_t>(cpu.sizes().begin(), cpu.sizes().end()), cpu.data_ptr(),
                       static_cast<size_t>(cpu.nbytes())});
  }
  // write_sharded also removes a stale layout (single file vs shards) left by
  // an earlier save.
  sf::write_sharded(dir, tensors, options.max_shard_bytes, {{"format", "pt"}});
}

void copy_model_dir_files(const std::string& from_dir, const std::string& to_dir) {
  if (!fs::exists(fs::path(from_dir) / "tokenizer.json") && !fs::exists(fs::path(from_dir) / "tokenizer.model"))
    fail(from_dir, ": has neither tokenizer.json nor tokenizer.model, so a model dir made from it could not tokenize");
  fs::create_directories(to_dir);
  std::vector<std::string> names(kTokenizerFiles.begin(), kTokenizerFiles.end());
  names.push_back("generation_config.json");
  for (const std::string& name : names) {
    const fs::path from = fs::path(from_dir) / name;
    if (fs::exists(from)) write_file_atomic((fs::path(to_dir) / name).string(), read_file(from.string()));
  }
}

}  // namespace st
