#include "eval/sample_replies.h"

#include <ATen/core/grad_mode.h>

#include "datasets/sample_encoder.h"
#include "model/generation.h"

namespace st::eval {

nlohmann::json sample_replies(const LlamaModel& model, const datasets::EncoderBundle& encoder,
                              const std::vector<std::string>& prompts, int64_t max_new_tokens) {
  nlohmann::json out = nlohmann::json::array();
  GenerationSettings settings;
  settings.max_new_tokens = max_new_tokens;
  settings.stop_ids = encoder.tokenizer.end_of_turn_ids();
  const datasets::SampleEncoder prompts_encoder(encoder.tokenizer, encoder.chat_template, encoder.options);
  at::NoGradGuard no_grad;
  for (const std::string& prompt : prompts) {
    const std::vector<int32_t> ids = prompts_encoder.encode_user_prompt(prompt);
    const std::vector<int64_t> reply = generate(model, std::vector<int64_t>(ids.begin(), ids.end()), settings);
    std::vector<int32_t> reply32(reply.begin(), reply.end());
    out.push_back({{"prompt", prompt}, {"reply", encoder.tokenizer.decode(reply32, true)}});
  }
  return out;
}

}  // namespace st::eval
