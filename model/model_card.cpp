#include "model/model_card.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"

namespace st {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<DataFileRecord> data_file_records(const std::string& split, const std::vector<std::string>& paths) {
  std::vector<DataFileRecord> records;
  for (const std::string& path : paths)
    records.push_back({split, path, sha256_file(path), static_cast<uint64_t>(fs::file_size(path))});
  return records;
}

void write_training_record(const TrainingRecord& r, const std::string& dir) {
  json data = json::array();
  for (const DataFileRecord& d : r.data)
    data.push_back({{"split", d.split}, {"path", d.path}, {"sha256", d.sha256}, {"bytes", d.bytes}});
  const json record{{"method", r.method},           {"base_model", r.base_model},   {"adapter", r.adapter},
                    {"recipe_file", r.recipe_file}, {"recipe_toml", r.recipe_toml}, {"data", data},
                    {"final_metrics", r.final_metrics}, {"tool", r.tool}};
  write_file_atomic((fs::path(dir) / kTrainingRecordFile).string(), record.dump(2) + "\n");
}

std::optional<TrainingRecord> read_training_record(const std::string& dir) {
  const fs::path path = fs::path(dir) / kTrainingRecordFile;
  if (!fs::exists(path)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_file(path.string()));
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON (", e.what(), ")");
  }
  TrainingRecord r;
  try {
    r.method = j.at("method").get<std::string>();
    r.base_model = j.at("base_model").get<std::string>();
    r.adapter = j.at("adapter").get<bool>();
    r.recipe_file = j.at("recipe_file").get<std::string>();
    r.recipe_toml = j.at("recipe_toml").get<std::string>();
    for (const json& d : j.at("data"))
      r.data.push_back({d.at("split").get<std::string>(), d.at("path").get<std::string>(),
                        d.at("sha256").get<std::string>(), d.at("bytes").get<uint64_t>()});
    r.final_metrics = j.at("final_metrics");
    r.tool = j.at("tool").get<std::string>();
  } catch (const json::exception& e) {
    fail(path.string(), ": ", e.what());
  }
  return r;
}

namespace {

std::string metric_text(const json& value) {
  if (!value.is_number_float()) return value.dump();
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value.get<double>());
  return text;
}

}  // namespace

std::string render_model_card(const ModelCard& card) {
  std::string text = "---\n";
  text += cat("base_model: ", json(card.base_model).dump(), "\n");
  text += cat("library_name: ", card.library, "\n");
  if (!card.tags.empty()) {
    text += "tags:\n";
    std::vector<std::string> seen;
    for (const std::string& tag : card.tags)
      if (std::find(seen.begin(), seen.end(), tag) == seen.end()) {
        seen.push_back(tag);
        text += cat("- ", tag, "\n");
      }
  }
  text += cat("---\n\n# ", card.title, "\n\n", card.summary, "\n");
  for (const auto& [heading, r] : card.stages) {
    text += cat("\n## ", heading, "\n\n");
    text += cat("`", r.method, "`", r.adapter ? " (a LoRA adapter)" : " (full fine-tuning)", " of `", r.base_model,
                "` with ", r.tool, ", recipe `", r.recipe_file, "`.\n\n");
    text += "| split | data file | SHA-256 | bytes |\n|---|---|---|---|\n";
    for (const DataFileRecord& d : r.data)
      text += cat("| ", d.split, " | `", d.path, "` | `", d.sha256, "` | ", d.bytes, " |\n");
    if (!r.final_metrics.empty()) {
      text += "\nFinal metrics:\n\n| metric | value |\n|---|---|\n";
      for (const auto& [name, value] : r.final_metrics.items()) text += cat("| ", name, " | ", metric_text(value), " |\n");
    }
    text += cat("\n<details><summary>Resolved recipe</summary>\n\n```toml\n", r.recipe_toml,
                r.recipe_toml.ends_with("\n") ? "" : "\n", "```\n\n</details>\n");
  }
  return text;
}

std::vector<std::string> record_tags(const TrainingRecord& record) {
  std::vector<std::string> tags{record.method};
  if (record.adapter) tags.push_back("lora");
  return tags;
}

std::string tool_name() { return cat("salamandra-tune ", ST_VERSION); }

}  // namespace st
