#include "train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "common/atomic_dir.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace st::train {

namespace {

constexpr const char* kStateFile = "training_state.safetensors";
// Adapter tensors (role kAdapter): the HF weights never hold them, so a
// checkpoint of a model with adapters keeps them here.
constexpr const char* kAdapterFile = "adapter_state.safetensors";
constexpr const char* kPositionFile = "trainer_state.json";

// Step number of a "checkpoint-<step>" name, or -1.
int64_t checkpoint_step(const std::string& name) {
  const std::string prefix = "checkpoint-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return -1;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

// The complete checkpoints of a run dir by step. A checkpoint caught
// between the two renames of its replacement exists only under its aside
// name (common/atomic_dir.h); it counts as that step's checkpoint.
std::vector<std::pair<int64_t, fs::path>> checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(run_dir)) return out;
  const std::string_view suffix = kAsideSuffix;
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    std::string name = entry.path().filename().string();
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      name.resize(name.size() - suffix.size());
      if (fs::exists(fs::path(run_dir) / name)) continue;  // the target is whole: the aside is stale
    }
    const int64_t step = checkpoint_step(name);
    if (step >= 0 && fs::exists(entry.path() / kPositionFile)) out.emplace_back(step, entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Tensors as contiguous CPU copies in their own dtype, written as one
// safetensors file.
void write_tensors(const std::string& path, const NamedTensors& named) {
  std::vector<at::Tensor> keep_alive;
  std::vector<safetensors::TensorToWrite> tensors;
  for (const auto& [name, tensor] : named) {
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    keep_alive.push_back(cpu);
    tensors.push_back({name, to_dtype(cpu.scalar_type()), cpu.sizes().vec(), cpu.data_ptr(),
                       static_cast<size_t>(cpu.nbytes())});
  }
  safetensors::write_file(path, tensors, {});
}

// The tensors of a file written by write_tensors; st::Error names the file
// and tensor for anything else.
NamedTensors read_tensors(const std::string& path) {
  const safetensors::File file(path);
  NamedTensors tensors;
  for (const auto& info : file.tensors()) {
    const at::ScalarType type = to_scalar_type(info.dtype, cat(file.path(), ": tensor \"", info.name, "\""));
    at::Tensor t = at::empty(info.shape, type);
    std::memcpy(t.data_ptr(), info.data, info.nbytes);
    tensors.emplace_back(info.name, t);
  }
  return tensors;
}

}  // namespace

nlohmann::json TrainingPosition::to_json() const {
  return {{"step", step}, {"epoch", epoch}, {"micro_batch", micro_batch}, {"nonfinite_steps", nonfinite_steps}};
}

TrainingPosition TrainingPosition::from_json(const nlohmann::json& j, const std::string& source) {
  TrainingPosition p;
  try {
    p.step = j.at("step").get<int64_t>();
    p.epoch = j.at("epoch").get<int64_t>();
    p.micro_batch = j.at("micro_batch").get<int64_t>();
    p.nonfinite_steps = j.value("nonfinite_steps", int64_t(0));
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": not a training position: ", e.what());
  }
  return p;
}

std::string StateShard::file_name() const {
  if (count == 0) return kStateFile;
  char name[96];
  std::snprintf(name, sizeof name, "training_state.rank-%05d-of-%05d.safetensors", rank, count);
  return name;
}

std::string stage_checkpoint_dir(const std::string& run_dir, int64_t step) {
  const fs::path tmp_dir = staging_path((fs::path(run_dir) / cat("checkpoint-", step)).string());
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  return tmp_dir.string();
}

void write_state_shard(const std::string& staged_dir, const AdamW& optimizer, const StateShard& shard) {
  // (write_tensors writes under a temporary name: a file that exists is whole.)
  write_tensors((fs::path(staged_dir) / shard.file_name()).string(), optimizer.state());
}

std::string save_checkpoint(const std::string& run_dir, const LlamaModel& model, const AdamW& optimizer,
                            const TrainingPosition& position, at::ScalarType weights_dtype,
                            const std::string& tokenizer_dir, int64_t keep_last, const nlohmann::json& extra,
                            const std::function<void(const std::string& dir)>& write_adapter,
                            const StateShard& shard) {
  const fs::path final_dir = fs::path(run_dir) / cat("checkpoint-", position.step);
  const fs::path tmp_dir = staging_path(final_dir.string());
  std::error_code ec;
  if (shard.count == 0) fs::remove_all(tmp_dir, ec);  // else staged, with the other processes' state in it
  if (write_adapter) {
    write_adapter(tmp_dir.string());
  } else {
    SaveOptions save;
    save.dtype = weights_dtype;
    save_model(model, tmp_dir.string(), save);
    const NamedTensors adapters = tensors_with_role(model.parameters(), TensorRole::kAdapter);
    if (!adapters.empty()) write_tensors((tmp_dir / kAdapterFile).string(), adapters);
  }
  copy_model_dir_files(tokenizer_dir, tmp_dir.string());
  // Optimizer state: fp32 (or bf16 without masters) CPU copies.
  write_state_shard(tmp_dir.string(), optimizer, shard);
  for (int r = 0; r < shard.count; ++r) {
    const fs::path part = tmp_dir / StateShard{r, shard.count}.file_name();
    if (!fs::exists(part)) fail(part.string(), ": process ", r, " did not write its part of the training state");
  }
  nlohmann::json state = extra;
  state["state_shards"] = shard.count;
  state["position"] = position.to_json();
  state["optimizer_steps"] = optimizer.steps();
  write_file_atomic((tmp_dir / kPositionFile).string(), state.dump(2) + "\n");

  replace_dir(tmp_dir.string(), final_dir.string());
  if (keep_last > 0) {
    auto all = checkpoints(run_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i)
      if (all[i].second != final_dir) fs::remove_all(all[i].second, ec);  // never the one just written
  }
  return final_dir.string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = checkpoints(run_dir);
  return all.empty() ? std::string() : all.back().second.string();
}

TrainerState read_trainer_state(const std::string& checkpoint_dir) {
  const std::string position_path = (fs::path(checkpoint_dir) / kPositionFile).string();
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(position_path));
  } catch (const nlohmann::json::exception& e) {
    fail(position_path, ": malformed JSON: ", e.what());
  }
  if (!state.is_object() || !state.contains("position")) fail(position_path, ": no \"position\" key");
  return {TrainingPosition::from_json(state["position"], position_path), std::move(state)};
}

TrainingPosition load_training_state(const std::string& checkpoint_dir, AdamW& optimizer,
                                     const StateShard& shard) {
  const TrainerState state = read_trainer_state(checkpoint_dir);
  auto parts = [](int64_t count) {
    return count == 0 ? std::string("whole (distributed.mode = \"ddp\" or one process)")
                      : cat("in ", count, " fully sharded part", count == 1 ? "" : "s", " (distributed.mode = \"fsdp\")");
  };
  const int64_t shards = state.fields.value("state_shards", int64_t(0));
  if (shards != shard.count)
    fail(checkpoint_dir, ": its training state is ", parts(shards), ", but this run's is ", parts(shard.count),
         "; resume with the mode and process count that wrote it");
  const NamedTensors tensors = read_tensors((fs::path(checkpoint_dir) / shard.file_name()).string());
  optimizer.load_state(tensors, state.fields.value("optimizer_steps", state.position.step));
  return state.position;
}

void load_adapter_state(const std::string& checkpoint_dir, LlamaModel& model) {
  const NamedTensors adapters = tensors_with_role(model.parameters(), TensorRole::kAdapter);
  const fs::path path = fs::path(checkpoint_dir) / kAdapterFile;
  if (adapters.empty() && !fs::exists(path)) return;
  if (!fs::exists(path))
    fail(path.string(), ": missing; the model has adapter tensors (", adapters.front().first, ", ...) but ",
         checkpoint_dir, " was written without them");
  std::map<std::string, at::Tensor> stored;
  for (auto& [name, tensor] : read_tensors(path.string())) stored.emplace(name, tensor);
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : adapters) {
    auto it = stored.find(name);
    if (it == stored.end()) fail(path.string(), ": no tensor \"", name, "\" (the model's adapter)");
    if (!it->second.sizes().equals(tensor.sizes()))
      fail(path.string(), ": tensor \"", name, "\" has shape ", it->second.sizes(), ", the model's adapter ",
           tensor.sizes());
    tensor.copy_(it->second);
    stored.erase(it);
  }
  if (!stored.empty())
    fail(path.string(), ": tensor \"", stored.begin()->first, "\" is not an adapter of this model");
}

}  // namespace st::train
