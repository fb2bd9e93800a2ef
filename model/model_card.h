// How a model dir we wrote was made, for the people who use it. A training
// run leaves a record in its final dir (training_record.json: the method,
// the model it started from, the data files with their SHA-256, the
// resolved recipe, the final metrics) and a README.md model card rendered
// from it, as TRL's trainers write a card beside the weights. Export renders
// the card of an exported dir from the records of every stage that made it
// (a fine-tuned model, then adapters merged into it).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace st {

inline constexpr const char* kTrainingRecordFile = "training_record.json";

struct DataFileRecord {
  std::string split;  // "train", "eval"
  std::string path;   // as the recipe named it
  std::string sha256;
  uint64_t bytes = 0;
};

struct TrainingRecord {
  std::string method;       // the recipe: "sft", "dpo"
  std::string base_model;   // the model dir training started from (model.path)
  bool adapter = false;     // LoRA: the dir holds a PEFT adapter, not weights
  std::string recipe_file;  // as given on the command line
  std::string recipe_toml;  // resolved: every key with its value
  std::vector<DataFileRecord> data;
  /// The last optimizer step's metrics and the last evaluation's (eval_*).
  nlohmann::json final_metrics = nlohmann::json::object();
  std::string tool;  // "salamandra-tune 0.1.0"
};

/// Hashes each file (SHA-256) into data records for `split`.
std::vector<DataFileRecord> data_file_records(const std::string& split, const std::vector<std::string>& paths);

/// Writes DIR/training_record.json atomically.
void write_training_record(const TrainingRecord& record, const std::string& dir);
/// DIR's record, or nullopt when it has none; st::Error naming the file and
/// key when it is malformed.
std::optional<TrainingRecord> read_training_record(const std::string& dir);

struct ModelCard {
  std::string title;       // the dir's name
  std::string library;     // front matter's library_name: "transformers" or "peft"
  std::string base_model;  // front matter's base_model: the model the first stage started from
  std::vector<std::string> tags;
  std::string summary;     // a paragraph: how this dir was written
  /// Each stage that made the model: a heading and its record.
  std::vector<std::pair<std::string, TrainingRecord>> stages;
};

/// README.md: YAML front matter (base_model, library_name, tags), the
/// summary, and per stage its data (path, SHA-256, bytes), final metrics
/// and resolved recipe.
std::string render_model_card(const ModelCard& card);

/// A record's tags: its method, and "lora" for an adapter.
std::vector<std::string> record_tags(const TrainingRecord& record);

/// "salamandra-tune <version>".
std::string tool_name();

}  // namespace st
