#include "lora/merge.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <memory>

#include "common/atomic_dir.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/mapped_file.h"
#include "common/serial_worker.h"
#include "common/error.h"
#include "lora/adapter.h"
#include "lora/lora_linear.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace st::lora {
namespace fs = std::filesystem;
namespace sf = safetensors;

namespace {

// Streams the merged weights into `dir`, row block by row block, each
// rounded once to the output dtype; reads each tensor back from the file
// being written, against a checksum of the bytes handed to the writer,
// while the next ones are written; then every file's header; and returns
// once the files are on disk.
void write_merged_weights(const MergeOptions& options, MergedWeights& weights, const std::string& dir,
                          MergeReport& report) {
  const auto& entries = weights.entries();
  std::vector<sf::TensorToWrite> plan;
  const sf::DType out_dtype = to_dtype(options.dtype);
  for (const MergedWeights::Entry& e : entries)
    plan.push_back({e.info->name, out_dtype, e.info->shape, nullptr,
                    sf::tensor_nbytes(out_dtype, e.info->shape, cat(e.file->path(), ": tensor \"", e.info->name, "\""))});
  std::vector<Checksum> checksums(entries.size());
  // Each file mapped (at its final size) while it is written, by its
  // temporary name, for the read-backs; declared before `hasher`, whose
  // jobs use them.
  std::map<std::string, std::unique_ptr<MappedFile>> mapped;
  SerialWorker hasher;  // hashes copied tensors, and reads back written ones, while the next are written
  uint64_t written = 0, total = 0;
  for (const sf::TensorToWrite& t : plan) total += t.nbytes;
  auto source = [&](size_t i, sf::TensorSink& sink) {
    const MergedWeights::Entry& e = entries[i];
    Checksum& checksum = checksums[i];
    const auto write = [&](const void* data, size_t bytes) { sink.write(data, bytes); };
    if (!weights.write_unchanged(e, out_dtype, checksum, hasher,
                                 [&](int fd, uint64_t offset, uint64_t bytes) { return sink.copy(fd, offset, bytes); },
                                 write)) {
      const int64_t rows = e.info->shape.empty() ? 1 : e.info->shape[0];
      const int64_t row_bytes = rows == 0 ? 0 : e.info->numel() / rows * 4;  // as fp32
      for (const auto& [begin, end] : row_blocks(rows, row_bytes)) {
        const at::Tensor block = weights.rows(e, begin, end).to(options.dtype).contiguous();
        checksum.update(block.data_ptr(), block.nbytes());
        write(block.data_ptr(), block.nbytes());
      }
      weights.release(e);
    }
    // After the source's checksum on the same worker. Reading back after
    // the last tensor instead (over both threads, beside the fsync), the
    // read-back was 0.4 s of a 2B bf16 export's 3 s here.
    const sf::TensorPlace place = sink.flush();
    std::unique_ptr<MappedFile>& file = mapped[place.temp_path];
    if (!file) file = std::make_unique<MappedFile>(place.temp_path, place.file_size);
    hasher.post([&, i, file = file.get(), at = static_cast<size_t>(place.offset), path = place.path] {
      if (checksum_hex(*file, at, plan[i].nbytes) != checksums[i].hex())
        fail(path, ": tensor ", plan[i].name, " reads back other bytes than were written");
    });
    written += plan[i].nbytes;
    if (options.progress) options.progress(written, total);
  };
  const std::vector<std::string> names =
      sf::write_sharded(dir, plan, options.max_shard_bytes, {{"format", "pt"}}, source, Durability::deferred);
  hasher.finish();
  mapped.clear();
  // The shards go to disk while their headers are read back.
  std::future<void> synced = std::async(std::launch::async, [&dir, &names] {
    for (const std::string& name : names) sync_file((fs::path(dir) / name).string());
  });
  report.tensors = static_cast<int64_t>(plan.size());
  for (const MergedWeights::Entry& e : entries) report.merged_tensors += e.adapters ? 1 : 0;

  // Read back: every tensor's header entry, from the files written (its
  // bytes were checked above, at the offset the writer gave it).
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.size(); ++i) index[plan[i].name] = i;
  size_t read_back = 0;
  for (const std::string& path : weight_files(dir).files) {
    const sf::File file(path);
    for (const sf::TensorInfo& info : file.tensors()) {
      auto it = index.find(info.name);
      if (it == index.end() || info.dtype != out_dtype || info.shape != plan[it->second].shape)
        fail(path, ": tensor ", info.name, " does not read back as written");
      ++read_back;
      report.bytes_verified += info.nbytes;
    }
  }
  if (read_back != plan.size()) fail(dir, ": ", read_back, " tensors read back of ", plan.size(), " written");
  synced.get();
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
  if (fs::exists(options.out_dir) && !options.force)
    fail(options.out_dir, ": exists; choose another --out or pass --force to replace it");
  MergedWeights weights(options.base_dir, options.adapters);

  MergeReport report;
  const std::string staged = staging_path(options.out_dir);
  std::error_code ec;
  fs::remove_all(staged, ec);
  try {
    write_model_configs(weights.config(), staged, options.dtype);
    write_merged_weights(options, weights, staged, report);
    report.tokenizer_from = tokenizer_source(options.base_dir, options.adapters);
    copy_model_dir_files(report.tokenizer_from, staged);
    for (const auto& [name, text] : options.extra_files) write_file_atomic((fs::path(staged) / name).string(), text);
    if (options.self_check) self_check(options, weights.adapters(), staged, report);
  } catch (...) {
    fs::remove_all(staged, ec);
    throw;
  }
  replace_dir(staged, options.out_dir);
  return report;
}

}  // namespace st::lora
