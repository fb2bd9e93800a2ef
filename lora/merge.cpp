#include "lora/merge.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "common/atomic_dir.h"
#include "common/error.h"
#include "lora/adapter.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace st::lora {
namespace fs = std::filesystem;
namespace sf = safetensors;

namespace {

// One adapter's tensors for one projection, read whole (adapters are small).
struct ModuleAdapter {
  at::Tensor a, b, magnitude;  // fp32 CPU; magnitude undefined without DoRA
  ModuleShape shape;
  double weight = 1;
};
// Projection key ("model.layers.0.self_attn.q_proj") -> the adapters on it, in argument order.
using AdapterTable = std::map<std::string, std::vector<ModuleAdapter>>;

// Each adapter dir read and checked against the base's shapes by applying
// it to a model on the meta device (shapes without memory).
AdapterTable read_adapters(const ModelConfig& config, const std::vector<WeightedAdapter>& adapters) {
  AdapterTable table;
  for (const WeightedAdapter& adapter : adapters) {
    LlamaModel shapes(config, at::TensorOptions().dtype(at::kFloat).device(at::kMeta));
    const LoraConfig lora = read_adapter_config(adapter.dir);
    const auto modules = attach_adapters(shapes, lora, at::TensorOptions().dtype(at::kFloat),
                                         (fs::path(adapter.dir) / kAdapterConfigFile).string());
    load_adapter_weights(adapter.dir, shapes);
    for (const AdaptedModule& m : modules)
      table[m.key].push_back({m.linear->lora_a(), m.linear->lora_b(), m.linear->magnitude(), m.linear->shape(),
                              adapter.weight});
  }
  return table;
}

// The first adapter dir that carries tokenizer files, else the base.
std::string tokenizer_source(const MergeOptions& options) {
  for (const WeightedAdapter& a : options.adapters)
    if (fs::exists(fs::path(a.dir) / "tokenizer.json") || fs::exists(fs::path(a.dir) / "tokenizer.model"))
      return a.dir;
  return options.base_dir;
}

// Streams the merged weights into `dir`; returns (tensors, merged tensors).
std::pair<int64_t, int64_t> write_merged_weights(const MergeOptions& options, const AdapterTable& table,
                                                 const std::string& dir) {
  const WeightFiles files = weight_files(options.base_dir);
  std::vector<sf::File> opened;
  for (const std::string& path : files.files) {
    if (!fs::exists(path)) fail(files.index_path.string(), ": names shard ", fs::path(path).filename().string(),
                                " which does not exist");
    opened.emplace_back(path);
  }
  struct Entry {
    const sf::File* file;
    const sf::TensorInfo* info;
    const std::vector<ModuleAdapter>* adapters;  // null: copied, converted
  };
  std::vector<Entry> entries;
  std::vector<sf::TensorToWrite> plan;
  const sf::DType out_dtype = to_dtype(options.dtype);
  std::map<std::string, bool> used;
  for (const auto& [key, _] : table) used[key + ".weight"] = false;
  for (const sf::File& file : opened) {
    for (const sf::TensorInfo& info : file.tensors()) {
      // Buffers old converters saved; transformers never writes them.
      if (info.name.ends_with(".self_attn.rotary_emb.inv_freq")) continue;
      const std::string key = info.name.ends_with(".weight") ? info.name.substr(0, info.name.size() - 7) : "";
      auto it = table.find(key);
      if (it != table.end()) used[info.name] = true;
      entries.push_back({&file, &info, it == table.end() ? nullptr : &it->second});
      plan.push_back({info.name, out_dtype, info.shape, nullptr,
                      sf::tensor_nbytes(out_dtype, info.shape, cat(file.path(), ": tensor \"", info.name, "\""))});
    }
  }
  for (const auto& [name, found] : used)
    if (!found) fail(options.base_dir, ": the adapters adapt ", name, ", which the base's weights do not hold");

  int64_t merged = 0;
  at::Tensor current;  // the tensor being written: alive until the next one
  const Entry* previous = nullptr;
  auto source = [&](size_t i) -> const void* {
    if (previous) previous->file->release(*previous->info);  // drop the pages just written from
    const Entry& e = entries[i];
    previous = &e;
    at::NoGradGuard no_grad;
    const at::Tensor stored = stored_tensor(*e.info, e.file->path());
    if (!e.adapters) {
      current = stored.to(options.dtype).contiguous();
      return current.data_ptr();
    }
    // W + sum w_i dW_i in fp32, rounded once. DoRA's delta is taken of the
    // base weight W, whatever the other adapters add.
    const at::Tensor base = stored.to(at::kFloat);
    at::Tensor sum = base.clone();
    for (const ModuleAdapter& m : *e.adapters)
      sum.add_(adapter_delta(base, m.a, m.b, m.magnitude, m.shape.scale), m.weight);
    current = sum.to(options.dtype).contiguous();
    ++merged;
    return current.data_ptr();
  };
  sf::write_sharded(dir, plan, options.max_shard_bytes, {{"format", "pt"}}, source);
  if (previous) previous->file->release(*previous->info);
  return {static_cast<int64_t>(plan.size()), merged};
}

// A fixed probe batch: BOS, then ids drawn over the whole vocabulary.
at::Tensor probe_ids(const ModelConfig& config) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(20261207);
  const int64_t length = std::min<int64_t>(32, config.max_position_embeddings);
  at::Tensor ids = at::randint(0, config.vocab_size, {2, length}, generator, at::TensorOptions().dtype(at::kLong));
  ids.select(1, 0).fill_(config.bos_token_id);
  return ids;
}

at::Tensor probe_logits(const LlamaModel& model, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  return model.logits(model.hidden_states(ids)).to(at::kFloat);
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

// The self-check described in merge.h, on the staged dir.
void self_check(const MergeOptions& options, const AdapterTable& table, const std::string& staged,
                MergeReport& report) {
  const at::TensorOptions fp32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor reference;
  {
    auto model = load_model(options.base_dir, fp32);
    const at::Tensor ids = probe_ids(model->config());
    report.probe_tokens = ids.numel();
    // The reference: the adapters applied unmerged, each at its weight,
    // wrapping one another (LoraLinear's forward, not adapter_delta).
    std::map<std::string, std::shared_ptr<Projection>> bases;
    for (const auto& [key, adapters] : table) {
      std::shared_ptr<Projection>& slot = model->projection(key);
      bases[key] = slot;
      for (const ModuleAdapter& m : adapters) {
        auto wrapped = std::make_shared<LoraLinear>(slot, m.shape, 0.0, m.magnitude.defined(), fp32);
        wrapped->lora_a().copy_(m.a);
        wrapped->lora_b().copy_(m.b);
        if (m.magnitude.defined()) wrapped->magnitude().copy_(m.magnitude);
        wrapped->set_combination_weight(m.weight);
        slot = wrapped;
      }
    }
    reference = probe_logits(*model, ids);
    // What rounding the merged weights to the output dtype does to this
    // model's logits: merged in memory as merge_adapters merges them, then
    // rounded as it writes them.
    if (options.dtype != at::kFloat) {
      at::NoGradGuard no_grad;
      for (const auto& [key, adapters] : table) {
        model->projection(key) = bases[key];
        at::Tensor weight = model->parameter(key + ".weight");
        at::Tensor sum = at::zeros_like(weight);
        for (const ModuleAdapter& m : adapters)
          sum.add_(adapter_delta(weight, m.a, m.b, m.magnitude, m.shape.scale), m.weight);
        weight.add_(sum);
      }
      const at::Tensor merged = probe_logits(*model, ids);
      for (auto& [name, tensor] : model->checkpoint_tensors()) tensor.copy_(tensor.to(options.dtype));
      report.rounding_effect = max_abs(probe_logits(*model, ids) - merged);
    }
  }
  const auto merged = load_model(staged, fp32);
  report.max_logit_difference = max_abs(probe_logits(*merged, probe_ids(merged->config())) - reference);
  report.bound = 2 * report.rounding_effect + 1e-5 * std::max(1.0, max_abs(reference));
  report.checked = true;
  if (!(report.max_logit_difference <= report.bound))
    fail("merge self-check failed: the merged model's logits differ from the base with the adapters applied by ",
         report.max_logit_difference, " (bound ", report.bound, "); nothing was written to ", options.out_dir);
}

}  // namespace

MergeReport merge_adapters(const MergeOptions& options) {
  if (options.adapters.empty()) fail("merge: no adapter given (--adapter DIR)");
  if (fs::exists(options.out_dir) && !options.force)
    fail(options.out_dir, ": exists; choose another --out or pass --force to replace it");
  const ModelConfig config = load_model_config(options.base_dir);
  const AdapterTable table = read_adapters(config, options.adapters);

  MergeReport report;
  const std::string staged = staging_path(options.out_dir);
  std::error_code ec;
  fs::remove_all(staged, ec);
  try {
    write_model_configs(config, staged, options.dtype);
    std::tie(report.tensors, report.merged_tensors) = write_merged_weights(options, table, staged);
    report.tokenizer_from = tokenizer_source(options);
    copy_model_dir_files(report.tokenizer_from, staged);
    if (options.self_check) self_check(options, table, staged, report);
  } catch (...) {
    fs::remove_all(staged, ec);
    throw;
  }
  replace_dir(staged, options.out_dir);
  return report;
}

}  // namespace st::lora
