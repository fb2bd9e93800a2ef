// Text generation from a LlamaModel: greedy decoding and sampling with
// temperature, top-k, top-p and repetition penalty, applied in the order and
// with the arithmetic of transformers' logits processors, so greedy output is
// token-for-token what transformers' generate() gives. Stops on any stop id
// (eos and <|im_end|> for Salamandra instruct models).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace st {

class LlamaModel;

/// Decoding settings; defaults as transformers' GenerationConfig.
struct GenerationSettings {
  int64_t max_new_tokens = 128;
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  std::vector<int64_t> stop_ids;
  uint64_t seed = 0;
  /// Decode incrementally with a KV cache (false: re-run the whole sequence).
  bool use_cache = true;

  /// Overrides fields from a generation_config.json object (`source` names
  /// the file in errors). Unknown keys are ignored as transformers does.
  void apply_json(const nlohmann::json& json, const std::string& source);
  /// Checks ranges; errors say which setting is wrong.
  void validate() const;
};

/// Called with each new token id; return false to stop early.
using TokenCallback = std::function<bool(int64_t)>;

/// Why a generation ended.
enum class GenerationEnd { kStopToken, kMaxNewTokens, kPositionLimit, kCallback };

/// Generates after `prompt` (ids, BOS included if wanted); returns only the
/// new ids, the stop id included when one ended the generation. A prompt
/// that leaves no position below the model's max_position_embeddings is an
/// st::Error; `end` (optional) tells why generation stopped, so a caller can
/// say when the position limit cut it short.
std::vector<int64_t> generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                              const GenerationSettings& settings, const TokenCallback& on_token = {},
                              GenerationEnd* end = nullptr);

}  // namespace st
