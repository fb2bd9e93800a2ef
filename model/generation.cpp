#include "model/generation.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/error.h"
#include "model/llama.h"

namespace st {
namespace {

// transformers' RepetitionPenaltyLogitsProcessor: seen tokens' logits are
// divided by the penalty when positive and multiplied when negative.
void apply_repetition_penalty(at::Tensor& scores, const std::vector<int64_t>& seen, double penalty) {
  at::Tensor ids = at::tensor(seen, at::TensorOptions().dtype(at::kLong)).to(scores.device()).unsqueeze(0);
  at::Tensor picked = scores.gather(1, ids);
  picked = at::where(picked < 0, picked * penalty, picked / penalty);
  scores = scores.scatter(1, ids, picked);
}

// TopKLogitsWarper: everything below the k-th largest logit is removed.
void apply_top_k(at::Tensor& scores, int64_t k) {
  k = std::min(std::max<int64_t>(k, 1), scores.size(-1));
  at::Tensor kth = std::get<0>(at::topk(scores, k)).select(-1, k - 1).unsqueeze(-1);
  scores = scores.masked_fill(scores < kth, -std::numeric_limits<float>::infinity());
}

// TopPLogitsWarper: drop the least likely tokens whose cumulative probability
// stays within 1 - p, always keeping the most likely one.
void apply_top_p(at::Tensor& scores, double p) {
  auto [sorted, indices] = at::sort(scores, /*dim=*/-1, /*descending=*/false);
  at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
  at::Tensor remove_sorted = cumulative <= (1.0 - p);
  remove_sorted.narrow(-1, remove_sorted.size(-1) - 1, 1).fill_(false);
  at::Tensor remove = remove_sorted.scatter(1, indices, remove_sorted);
  scores = scores.masked_fill(remove, -std::numeric_limits<float>::infinity());
}

}  // namespace

void GenerationSettings::apply_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object");
  auto number = [&](const char* key, auto& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_number()) fail(source, ": key \"", key, "\" must be a number");
    out = j[key].get<std::decay_t<decltype(out)>>();
  };
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    if (!j["do_sample"].is_boolean()) fail(source, ": key \"do_sample\" must be true or false");
    do_sample = j["do_sample"].get<bool>();
  }
  number("max_new_tokens", max_new_tokens);
  number("temperature", temperature);
  number("top_k", top_k);
  number("top_p", top_p);
  number("repetition_penalty", repetition_penalty);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& eos = j["eos_token_id"];
    std::vector<int64_t> ids;
    if (eos.is_number_integer()) ids.push_back(eos.get<int64_t>());
    else if (eos.is_array()) {
      for (const auto& e : eos) {
        if (!e.is_number_integer()) fail(source, ": key \"eos_token_id\" must hold integers");
        ids.push_back(e.get<int64_t>());
      }
    } else fail(source, ": key \"eos_token_id\" must be an integer or a list of integers");
    for (int64_t id : ids)
      if (std::find(stop_ids.begin(), stop_ids.end(), id) == stop_ids.end()) stop_ids.push_back(id);
  }
}

void GenerationSettings::validate() const {
  if (max_new_tokens < 0) fail("max_new_tokens must be >= 0, got ", max_new_tokens);
  if (!(temperature > 0)) fail("temperature must be > 0, got ", temperature);
  if (top_k < 0) fail("top_k must be >= 0 (0 disables it), got ", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("top_p must be in (0, 1], got ", top_p);
  if (!(repetition_penalty > 0)) fail("repetition_penalty must be > 0, got ", repetition_penalty);
}

std::vector<int64_t> generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                              const GenerationSettings& settings, const TokenCallback& on_token,
                              GenerationEnd* end) {
  settings.validate();
  if (prompt.empty()) fail("generate: the prompt has no tokens");
  const int64_t max_positions = model.config().max_position_embeddings;
  if (static_cast<int64_t>(prompt.size()) >= max_positions)
    fail("the prompt has ", prompt.size(), " tokens, which leaves no room below the model's max_position_embeddings ",
         max_positions, ": shorten it to at most ", max_positions - 1, " tokens");
  GenerationEnd ended = GenerationEnd::kMaxNewTokens;
  at::NoGradGuard no_grad;
  const auto device = model.options().device();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(settings.seed);
  std::vector<int64_t> sequence = prompt;
  std::vector<int64_t> produced;
  KVCache cache;
  for (int64_t step = 0; step < settings.max_new_tokens; ++step) {
    if (static_cast<int64_t>(sequence.size()) >= max_positions) {
      ended = GenerationEnd::kPositionLimit;
      break;
    }
    // With a cache only the tokens not yet seen are fed.
    const size_t start = settings.use_cache ? static_cast<size_t>(cache.length()) : 0;
    std::vector<int64_t> feed(sequence.begin() + start, sequence.end());
    at::Tensor ids = at::tensor(feed, at::TensorOptions().dtype(at::kLong)).to(device).unsqueeze(0);
    ForwardOptions options;
    if (settings.use_cache) options.cache = &cache;
    at::Tensor hidden = model.hidden_states(ids, options);
    // As transformers: the last position's logits, upcast to fp32 before processing.
    at::Tensor scores = model.logits(hidden.select(1, hidden.size(1) - 1)).to(at::kFloat);
    if (settings.repetition_penalty != 1.0) apply_repetition_penalty(scores, sequence, settings.repetition_penalty);
    int64_t next;
    if (settings.do_sample) {
      if (settings.temperature != 1.0) scores = scores / settings.temperature;
      if (settings.top_k > 0) apply_top_k(scores, settings.top_k);
      if (settings.top_p < 1.0) apply_top_p(scores, settings.top_p);
      at::Tensor probs = scores.softmax(-1).to(at::kCPU);
      next = at::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>();
    } else {
      next = scores.argmax(-1).item<int64_t>();
    }
    sequence.push_back(next);
    produced.push_back(next);
    if (std::find(settings.stop_ids.begin(), settings.stop_ids.end(), next) != settings.stop_ids.end()) {
      ended = GenerationEnd::kStopToken;
      if (on_token) on_token(next);
      break;
    }
    if (on_token && !on_token(next)) {
      ended = GenerationEnd::kCallback;
      break;
    }
  }
  if (end) *end = ended;
  return produced;
}

}  // namespace st
