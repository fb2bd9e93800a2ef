#include "export/hf_export.h"

#include <filesystem>

#include "common/error.h"
#include "model/model_card.h"
#include "model/model_dir.h"

namespace st::hf {
namespace fs = std::filesystem;

namespace {

std::string weight_text(double w) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", w);
  return text;
}

// The card: the source's training record (when we trained it), then each
// merged adapter's, in order.
ModelCard model_card(const ExportOptions& options) {
  ModelCard card;
  card.title = fs::path(options.out_dir).filename().string();
  if (card.title.empty()) card.title = fs::path(options.out_dir).parent_path().filename().string();
  card.library = "transformers";
  card.tags = {"salamandra-tune", "llama"};
  if (auto record = read_training_record(options.model_dir))
    card.stages.push_back({cat("Stage ", card.stages.size() + 1, ": `", record->method, "` (", options.model_dir, ")"),
                           *record});
  std::string merged;
  for (const lora::WeightedAdapter& a : options.adapters) {
    merged += cat(merged.empty() ? "" : ", ", "`", a.dir, "` (weight ", weight_text(a.weight), ")");
    if (auto record = read_training_record(a.dir))
      card.stages.push_back({cat("Stage ", card.stages.size() + 1, ": `", record->method, "`, a LoRA adapter (", a.dir,
                                 ", merged at weight ", weight_text(a.weight), ")"),
                             *record});
  }
  for (const auto& [_, record] : card.stages)
    for (const std::string& tag : record_tags(record)) card.tags.push_back(tag);
  // The model the first stage started from; else the source itself.
  card.base_model = card.stages.empty() ? options.model_dir : card.stages.front().second.base_model;
  card.summary = cat("Exported by ", tool_name(), " from `", options.model_dir, "` as ",
                     dtype_config_name(options.dtype), " safetensors",
                     merged.empty() ? "" : cat(", with LoRA adapters merged (added in float32, rounded once): ", merged),
                     ". The tokenizer files, chat template and generation_config.json are the source's, unchanged.");
  if (card.stages.empty())
    card.summary += "\n\nThe source carries no training record (training_record.json), so no data or recipe is named.";
  return card;
}

}  // namespace

ExportReport export_hf(const ExportOptions& options) {
  lora::MergeOptions merge;
  merge.base_dir = options.model_dir;
  merge.adapters = options.adapters;
  merge.out_dir = options.out_dir;
  merge.dtype = options.dtype;
  merge.max_shard_bytes = options.max_shard_bytes;
  merge.force = options.force;
  merge.progress = options.progress;
  // Without adapters the bytes are the source's rounded once, and the read
  // back checks them; merge's logit check is for what adapters change.
  merge.self_check = !options.adapters.empty();
  const ModelCard card = model_card(options);
  merge.extra_files["README.md"] = render_model_card(card);
  ExportReport report;
  report.stages = static_cast<int64_t>(card.stages.size());
  report.merge = lora::merge_adapters(merge);
  return report;
}

}  // namespace st::hf
