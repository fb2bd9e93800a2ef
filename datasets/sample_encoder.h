// Conversations and preference pairs to token ids plus a loss mask.
//
// Masks come from one tokenization of the whole rendered text, never from
// searching it: the template renders the conversation prefix by prefix,
// which cuts the rendered string into segments (template text, a user turn,
// an assistant reply, ...), each trained or not. The whole string is
// tokenized once with byte offsets, and a token is trained when the bytes it
// covers lie in trained segments. A token covering both trained and
// untrained text is the one reason to refuse a sample
// (token_straddles_boundary): no mask could split it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "datasets/records.h"
#include "tokenizer/tokenizer.h"

namespace st::datasets {

/// Which tokens carry loss.
enum class TrainOn {
  kAssistant,      // every assistant reply, through its end-of-turn token
  kAll,            // every token after BOS
  kLastAssistant,  // only the final assistant reply
};
TrainOn parse_train_on(std::string_view name);

/// What to do with a sample longer than max_length.
enum class Truncation {
  kDrop,  // drop the sample
  kLeft,  // keep BOS, cut the oldest tokens after it (prompt side)
  kRight, // cut the end
};
Truncation parse_truncation(std::string_view name);

struct EncoderOptions {
  TrainOn train_on = TrainOn::kAssistant;
  int64_t max_length = 0;  // 0: no limit
  Truncation truncation = Truncation::kDrop;
};

/// A piece of the rendered conversation.
struct TextSegment {
  std::string text;
  bool trained = false;
  std::string role;  // the message it belongs to; "" for template text outside any message
};

/// One tokenized sequence: ids[t] and mask[t] (1: ids[t] is a training target).
struct TokenSequence {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  size_t trained() const;
};

/// A tokenized preference pair: the prompt once, then each completion.
struct TokenPair {
  std::vector<int32_t> prompt;  // starts with BOS; no loss on it
  TokenSequence chosen, rejected;  // completions only (mask marks their trained tokens)
};

/// Counts of what encoding did to the samples.
struct EncodeCounts {
  size_t truncated = 0;
};

class SampleEncoder {
 public:
  SampleEncoder(const Tokenizer& tokenizer, const ChatTemplate& chat_template, EncoderOptions options);

  /// The rendered conversation cut into the segments its mask comes from;
  /// their texts concatenate to render(messages). Throws SampleError if
  /// the template does not render conversations prefix by prefix.
  std::vector<TextSegment> segments(const Conversation& conversation) const;

  /// ids and mask of one conversation, truncated per the options. Throws
  /// SampleError for: a token across trained and untrained text, nothing to
  /// train on, too long under kDrop. `truncated` is set when it was cut.
  TokenSequence encode(const Conversation& conversation, bool* truncated = nullptr) const;

  /// The ids a model is prompted with to reply to `messages`: rendered with
  /// the generation prompt, exactly one BOS, no EOS (generation, evaluation).
  std::vector<int32_t> encode_prompt(const Json& messages, const Json& tools) const;
  /// encode_prompt() of one user turn (after a system turn, unless
  /// `system` is empty): how an instruct model is asked a question.
  std::vector<int32_t> encode_user_prompt(const std::string& user, const std::string& system = "") const;

  /// Prompt rendered with the generation prompt, each completion as the
  /// continuation of it; masks on the completions only.
  TokenPair encode_pair(const PreferencePair& pair, bool* truncated = nullptr) const;

  const Tokenizer& tokenizer() const { return tokenizer_; }
  const ChatTemplate& chat_template() const { return template_; }
  const EncoderOptions& options() const { return options_; }

 private:
  // ids and mask of the segments' concatenation, tokenized once. With
  // prefix_tokens, also how many tokens (BOS included) lie in its first
  // prefix_bytes bytes; a token across that cut is refused too.
  TokenSequence encode_segments(const std::vector<TextSegment>& segments, const std::string& origin,
                                size_t prefix_bytes = 0, size_t* prefix_tokens = nullptr) const;
  // Segments by role, before the end-of-turn whitespace is split off.
  std::vector<TextSegment> role_segments(const Conversation& conversation) const;
  // Whether encoding `text` (which starts a document) needs the tokenizer's
  // BOS in front: when the tokenizer adds one and the template did not.
  bool needs_bos(const std::string& text) const;
  std::vector<TextSegment> split_trailing_whitespace(std::vector<TextSegment> segments) const;

  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  EncoderOptions options_;
  std::string bos_text_;
};

}  // namespace st::datasets
