#include "datasets/data_config.h"

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st::datasets {

RecipeSchema data_schema() {
  using K = KeyType;
  using enum KeyEffect;
  std::vector<std::string> formats;
  for (DataFormat f : {DataFormat::kAuto, DataFormat::kMessages, DataFormat::kShareGpt, DataFormat::kAlpaca,
                       DataFormat::kPromptCompletion, DataFormat::kPreference, DataFormat::kPreferenceTranscripts,
                       DataFormat::kLlamaFactoryRanking, DataFormat::kOpenAiPreference})
    formats.emplace_back(data_format_name(f));
  using Strings = std::vector<std::string>;
  using Map = std::map<std::string, std::string>;
  return {
      {.key = "model.path", .type = K::kPath, .must_exist = true,
       .affects = kResults, .help = "Hugging Face model dir: tokenizer, chat template (and weights for training)"},
      {.key = "data.train", .type = K::kPathList, .must_exist = true,
       .affects = kResults, .help = "training files: .jsonl or .json, optionally gzip-compressed"},
      {.key = "data.eval", .type = K::kPathList, .default_value = Strings{}, .must_exist = true,
       .affects = kResults, .help = "held-out files; when empty, eval_ratio of the training samples are held out"},
      {.key = "data.eval_ratio", .type = K::kFloat, .default_value = 0.0, .min = 0.0, .max = 0.5,
       .affects = kResults, .help = "share of training samples held out for evaluation when data.eval is empty"},
      {.key = "data.format", .type = K::kString, .default_value = std::string("auto"), .choices = formats,
       .affects = kCache, .help = "schema of the files; auto detects it from the first record"},
      {.key = "data.fields", .type = K::kStringMap, .default_value = Map{},
       .affects = kCache, .help = "key renames for other schemas, e.g. {messages = \"dialog\", content = \"text\"}"},
      {.key = "data.role_aliases", .type = K::kStringMap, .default_value = Map{},
       .affects = kCache, .help = "role renames, e.g. {bot = \"assistant\"}"},
      {.key = "data.skip_invalid", .type = K::kBool, .default_value = false,
       .affects = kCache, .help = "skip and count invalid samples instead of stopping at the first"},
      {.key = "data.chat_template", .type = K::kPath, .optional = true, .must_exist = true,
       .affects = kResults, .help = "a .jinja file to use instead of the model dir's chat template"},
      {.key = "data.template_vars", .type = K::kStringMap, .default_value = Map{},
       .affects = kCache, .help = "extra chat template variables, e.g. {date_string = \"2024-09-30\"}"},
      {.key = "data.train_on", .type = K::kString, .default_value = std::string("assistant"),
       .choices = {"assistant", "all", "last_assistant"},
       .affects = kCache, .help = "tokens with loss: assistant replies (with their end token), all, or the last reply"},
      {.key = "data.max_length", .type = K::kInt, .default_value = int64_t(2048), .min = 8, .max = 1 << 20,
       .affects = kCache, .help = "tokens per sequence (and per packed row); at most the model's max_position_embeddings"},
      {.key = "data.allow_beyond_positions", .type = K::kBool, .default_value = false,
       .help = "allow data.max_length above the model's max_position_embeddings (positions it was never trained at)"},
      {.key = "data.truncation", .type = K::kString, .default_value = std::string("right"),
       .choices = {"drop", "left", "right"},
       .affects = kCache, .help = "longer samples: drop them, cut the oldest tokens after BOS, or cut the end"},
      {.key = "data.packing", .type = K::kBool, .default_value = true,
       .affects = kResults, .help = "pack samples into rows of max_length tokens (else pad, bucketed by length)"},
      {.key = "data.bucket_window", .type = K::kInt, .default_value = int64_t(64), .min = 1, .max = 1 << 20,
       .affects = kResults, .help = "padded mode: batches sorted by length within windows of this many batches"},
      {.key = "data.seed", .type = K::kInt, .default_value = int64_t(42), .min = 0,
       .affects = kResults, .help = "shuffle and split seed"},
      {.key = "data.cache_dir", .type = K::kPath, .default_value = std::string(""),
       .help = "token cache root; empty: $XDG_CACHE_HOME/salamandra-tune or ~/.cache/salamandra-tune"},
      {.key = "data.workers", .type = K::kInt, .default_value = int64_t(0), .min = 0, .max = 1024,
       .help = "tokenizer threads for prepare; 0: all cores"},
  };
}

namespace {

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return (std::filesystem::path(xdg) / "salamandra-tune").string();
  if (const char* home = std::getenv("HOME"); home && *home)
    return (std::filesystem::path(home) / ".cache" / "salamandra-tune").string();
  return (std::filesystem::temp_directory_path() / "salamandra-tune-cache").string();
}

// Fills a FieldMapping from data.fields; unknown names are errors.
FieldMapping field_mapping(const Recipe& recipe) {
  FieldMapping m;
  std::map<std::string, std::string*> slots = {
      {"messages", &m.messages}, {"role", &m.role},         {"content", &m.content},
      {"system", &m.system},     {"instruction", &m.instruction}, {"input", &m.input},
      {"output", &m.output},     {"history", &m.history},   {"prompt", &m.prompt},
      {"completion", &m.completion}, {"chosen", &m.chosen}, {"rejected", &m.rejected},
      {"tools", &m.tools}};
  for (const auto& [name, value] : recipe.get_map("data.fields")) {
    auto it = slots.find(name);
    if (it == slots.end()) {
      std::string known;
      for (const auto& [k, _] : slots) known += (known.empty() ? "" : ", ") + k;
      fail("data.fields.", name, " (", recipe.where("data.fields"), "): unknown field; known fields: ", known);
    }
    *it->second = value;
  }
  m.role_aliases = recipe.get_map("data.role_aliases");
  return m;
}

// data.max_length against the positions the model was trained at (its
// config.json's max_position_embeddings), unless the recipe allows more. A
// model dir without a config.json (a tokenizer-only dir, for prepare) has no
// limit to check. Read here with nlohmann rather than ModelConfig: datasets/
// sits below model/ and needs only this one number.
void check_max_length(const Recipe& recipe) {
  const std::string config = (std::filesystem::path(recipe.get_string("model.path")) / "config.json").string();
  if (recipe.get_bool("data.allow_beyond_positions") || !std::filesystem::exists(config)) return;
  const auto j = nlohmann::json::parse(read_file(config), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("max_position_embeddings") || !j["max_position_embeddings"].is_number_integer())
    return;  // loading the model reports a malformed config.json
  const int64_t positions = j["max_position_embeddings"].get<int64_t>();
  const int64_t max_length = recipe.get_int("data.max_length");
  if (max_length > positions)
    fail("data.max_length = ", max_length, " (", recipe.where("data.max_length"),
         ") is above the model's max_position_embeddings ", positions, " (", config,
         "): longer samples would train at positions the model has never seen. Lower data.max_length, or set "
         "data.allow_beyond_positions = true");
}

}  // namespace

DataConfig data_config(const Recipe& recipe) {
  check_max_length(recipe);
  DataConfig c;
  c.model_dir = recipe.get_string("model.path");
  c.train_files = recipe.get_list("data.train");
  c.eval_files = recipe.get_list("data.eval");
  c.eval_ratio = recipe.get_float("data.eval_ratio");
  c.seed = static_cast<uint64_t>(recipe.get_int("data.seed"));
  c.reader.format = parse_data_format(recipe.get_string("data.format"));
  c.reader.fields = field_mapping(recipe);
  c.reader.skip_invalid = recipe.get_bool("data.skip_invalid");
  if (recipe.has("data.chat_template")) c.chat_template_file = recipe.get_string("data.chat_template");
  c.template_vars = recipe.get_map("data.template_vars");
  c.encoder.train_on = parse_train_on(recipe.get_string("data.train_on"));
  c.encoder.max_length = recipe.get_int("data.max_length");
  c.encoder.truncation = parse_truncation(recipe.get_string("data.truncation"));
  c.packing = recipe.get_bool("data.packing");
  c.bucket_window = static_cast<uint32_t>(recipe.get_int("data.bucket_window"));
  c.cache_dir = recipe.get_string("data.cache_dir");
  if (c.cache_dir.empty()) c.cache_dir = default_cache_dir();
  c.workers = static_cast<int>(recipe.get_int("data.workers"));
  if (c.workers == 0) c.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // What changes the tokens: the keys flagged kCache in data_schema().
  c.canonical_options = recipe.canonical(KeyEffect::kCache);
  return c;
}

BatchOptions batch_options(const DataConfig& config, uint32_t rows, uint32_t accumulation) {
  BatchOptions options;
  options.mode = config.packing ? BatchMode::kPacked : BatchMode::kPadded;
  options.row_tokens = static_cast<uint32_t>(config.encoder.max_length);
  options.rows = rows;
  options.accumulation = accumulation;
  options.seed = config.seed;
  options.bucket_window = config.bucket_window;
  return options;
}

}  // namespace st::datasets
