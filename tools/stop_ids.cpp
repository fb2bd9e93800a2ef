// The ids generation stops on for Salamandra chat models, shared by the
// commands that generate (generate, eval-tasks).
#include "model/tokenizer.h"
#include "tools/commands.h"

namespace st::cli {

std::vector<int64_t> chat_stop_ids(const Tokenizer& tokenizer) {
  std::vector<int64_t> ids;
  if (tokenizer.eos_id() >= 0) ids.push_back(tokenizer.eos_id());
  // Instruct models end a turn with <|im_end|> rather than eos.
  if (int32_t im_end = tokenizer.token_to_id("<|im_end|>"); im_end >= 0) ids.push_back(im_end);
  return ids;
}

}  // namespace st::cli
