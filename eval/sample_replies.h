// Replies of the model to a few user prompts, generated greedily during
// training so a run's log shows what the model says as it learns.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "datasets/prepare.h"
#include "model/llama.h"

namespace st::eval {

/// [{prompt, reply}] for each prompt, rendered as a one-turn user
/// conversation with the encoder's chat template and generation prompt, at
/// most max_new_tokens tokens, stopping at the end of the turn.
nlohmann::json sample_replies(const LlamaModel& model, const datasets::EncoderBundle& encoder,
                              const std::vector<std::string>& prompts, int64_t max_new_tokens);

}  // namespace st::eval
