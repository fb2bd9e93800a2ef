// salamandra-tune score: the log-probability of every token of each document
// given the tokens before it, through the chunked LM head (no [tokens x
// vocab] logits). Output: JSONL {"ids": [...], "logprobs": [null, ...]}.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/lm_head.h"
#include "model/model_dir.h"
#include "tokenizer/tokenizer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_source.h"

namespace st::cli {
namespace {

struct Document {
  size_t line;
  std::string text;
};

// Plain text: one document per line. JSONL: one object per line with "text".
std::vector<Document> read_documents(const std::string& path, std::string format) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the input file");
  if (format == "auto") {
    const std::string ext = std::filesystem::path(path).extension().string();
    format = (ext == ".jsonl" || ext == ".json") ? "jsonl" : "text";
  }
  if (format != "text" && format != "jsonl") throw UsageError("--format must be auto, text or jsonl");
  std::vector<Document> documents;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (format == "text") {
      documents.push_back({number, line});
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail(path, ":", number, ": malformed JSON");
    if (!j.is_object() || !j.contains("text")) fail(path, ":", number, ": expected an object with a \"text\" field");
    if (!j["text"].is_string()) fail(path, ":", number, ": \"text\" must be a string");
    documents.push_back({number, j["text"].get<std::string>()});
  }
  if (documents.empty())
    fail(path, ": no documents (", format == "text" ? "the file is empty" : "no JSONL lines", "); nothing to score");
  return documents;
}

}  // namespace

int run_score(int argc, char** argv) {
  ModelSource source;
  std::string input, output, format = "auto";
  ComputeFlags compute;
  int64_t chunk_rows = kDefaultLmHeadChunk;
  Args args("score", "Scores documents: for each, the token ids (BOS included) and the log-probability\n"
                     "of each id given the ids before it (null for the first). Writes JSONL.");
  source.add_to(args);
  args.option("input", "FILE", "plain text (one document per line) or JSONL with a \"text\" field", &input, true);
  args.option("output", "FILE", "where to write the JSONL (written atomically) [default: stdout]", &output);
  args.option("format", "F", "input format: auto (by extension), text or jsonl", &format);
  compute.add_to(args);
  args.option("chunk-rows", "N", "tokens per LM-head chunk", &chunk_rows);
  if (!args.parse(argc, argv)) return 0;
  if (chunk_rows <= 0) throw UsageError("--chunk-rows must be positive");

  at::TensorOptions options = compute.tensor_options();
  std::vector<Document> documents = read_documents(input, format);
  Tokenizer tokenizer = Tokenizer::load(source.tokenizer_dir());
  auto model = source.load(options);
  at::NoGradGuard no_grad;

  std::string lines;
  for (const Document& doc : documents) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode(doc.text);
    } catch (const Error& e) {  // e.g. bytes that are not UTF-8: a binary file
      fail(input, ":", doc.line, ": ", e.what(), " (score reads UTF-8 text or JSONL)");
    }
    if (static_cast<int64_t>(ids.size()) > model->config().max_position_embeddings)
      fail(input, ":", doc.line, ": document has ", ids.size(), " tokens, more than the model's ",
           model->config().max_position_embeddings, " positions");
    nlohmann::json logprobs = nlohmann::json::array({nullptr});
    if (ids.size() > 1) {
      std::vector<int64_t> ids64(ids.begin(), ids.end());
      at::Tensor input_ids = at::tensor(ids64, at::TensorOptions().dtype(at::kLong)).to(options.device()).unsqueeze(0);
      at::Tensor hidden = model->hidden_states(input_ids)[0];
      const int64_t n = hidden.size(0) - 1;
      at::Tensor scores = target_log_probs(hidden.narrow(0, 0, n), model->lm_head_weight(),
                                           input_ids[0].narrow(0, 1, n), chunk_rows)
                              .to(at::kCPU, at::kFloat)
                              .contiguous();
      const float* values = scores.data_ptr<float>();
      for (int64_t i = 0; i < n; ++i) logprobs.push_back(values[i]);
    }
    lines += nlohmann::json{{"ids", ids}, {"logprobs", logprobs}}.dump() + "\n";
  }
  if (output.empty()) std::cout << lines;
  else write_file_atomic(output, lines);
  return 0;
}

}  // namespace st::cli
