// Checkpoints: a Hugging Face model dir plus the training state, written
// under a temporary name and renamed, so a checkpoint that exists is whole.
//
//   <run>/checkpoint-<step>/   config.json, weights, tokenizer files,
//                              training_state.safetensors (optimizer moments,
//                              fp32 masters), trainer_state.json (position),
//                              adapter_state.safetensors (the model's adapter
//                              tensors, when it has any: never in the HF files)
//   adapter training (LoRA):   the adapter dir (adapter_config.json,
//                              adapter_model.safetensors) in place of
//                              config.json and the weights; the rest as above
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "model/llama.h"
#include "train/optimizer.h"

namespace st::train {

/// Where training stands after an optimizer step.
struct TrainingPosition {
  int64_t step = 0;         // optimizer steps done
  int64_t epoch = 0;        // epoch of the next micro-batch
  int64_t micro_batch = 0;  // index of the next micro-batch in that epoch's plan
  int64_t nonfinite_steps = 0;
  nlohmann::json to_json() const;
  static TrainingPosition from_json(const nlohmann::json& j, const std::string& source);
};

/// Which part of the optimizer state a process holds: all of it (count 0:
/// training_state.safetensors, tensors in their own shapes), or, in a
/// fully sharded run of `count` processes (one included), its flat shard
/// (training_state.rank-<r>-of-<count>.safetensors, one file per process).
struct StateShard {
  int rank = 0;
  int count = 0;
  std::string file_name() const;
};

/// The empty dir a checkpoint of `step` is staged in before its rename
/// (rank 0 makes it; the other processes of a sharded run then write their
/// state into it with write_state_shard before rank 0's save_checkpoint).
std::string stage_checkpoint_dir(const std::string& run_dir, int64_t step);
void write_state_shard(const std::string& staged_dir, const AdamW& optimizer, const StateShard& shard);

/// Writes run_dir/checkpoint-<step> (weights in `weights_dtype`), then
/// deletes all but the newest `keep_last` checkpoints (0 keeps all). With
/// a sharded state the staged dir holds the other processes' state files
/// already: this adds rank 0's, checks that all are there and renames.
/// `extra` is stored in trainer_state.json (e.g. the recipe digest).
/// With `write_adapter` (adapter training) the checkpoint holds what it
/// writes instead of the HF weights: the adapter, never the frozen base.
std::string save_checkpoint(const std::string& run_dir, const LlamaModel& model, const AdamW& optimizer,
                            const TrainingPosition& position, at::ScalarType weights_dtype,
                            const std::string& tokenizer_dir, int64_t keep_last, const nlohmann::json& extra,
                            const std::function<void(const std::string& dir)>& write_adapter = {},
                            const StateShard& shard = {});

/// The newest complete checkpoint dir in run_dir, or "" if none.
std::string latest_checkpoint(const std::string& run_dir);

/// A checkpoint's trainer_state.json: its position, and the whole object
/// (with the extra fields save_checkpoint was given).
struct TrainerState {
  TrainingPosition position;
  nlohmann::json fields;
};
/// st::Error names the file for anything missing or malformed.
TrainerState read_trainer_state(const std::string& checkpoint_dir);

/// Restores the optimizer from a checkpoint dir and returns its position;
/// st::Error names the file for anything missing or corrupt.
TrainingPosition load_training_state(const std::string& checkpoint_dir, AdamW& optimizer,
                                     const StateShard& shard = {});

/// Restores the model's adapter tensors (role kAdapter) from a checkpoint
/// dir: every one must be there with its shape, and nothing else. A model
/// without adapters and a checkpoint without the file is a no-op.
void load_adapter_state(const std::string& checkpoint_dir, LlamaModel& model);

}  // namespace st::train
