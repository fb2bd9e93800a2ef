#include "datasets/sample_encoder.h"

#include <algorithm>

#include "common/error.h"

namespace st::datasets {

namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// A short, printable excerpt of text around a byte offset for messages.
std::string excerpt(const std::string& text, size_t at) {
  size_t begin = at > 30 ? at - 30 : 0;
  std::string out = text.substr(begin, std::min<size_t>(60, text.size() - begin));
  std::string escaped;
  for (char c : out) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  return "\"" + escaped + "\"";
}

Json head(const Json& messages, size_t count) {
  Json out = Json::array();
  for (size_t i = 0; i < count; ++i) out.push_back(messages[i]);
  return out;
}

}  // namespace

TrainOn parse_train_on(std::string_view name) {
  if (name == "assistant") return TrainOn::kAssistant;
  if (name == "all") return TrainOn::kAll;
  if (name == "last_assistant") return TrainOn::kLastAssistant;
  fail("unknown train_on \"", name, "\": expected assistant, all or last_assistant");
}

Truncation parse_truncation(std::string_view name) {
  if (name == "drop") return Truncation::kDrop;
  if (name == "left") return Truncation::kLeft;
  if (name == "right") return Truncation::kRight;
  fail("unknown truncation \"", name, "\": expected drop, left or right");
}

size_t TokenSequence::trained() const { return static_cast<size_t>(std::count(mask.begin(), mask.end(), 1)); }

SampleEncoder::SampleEncoder(const Tokenizer& tokenizer, const ChatTemplate& chat_template, EncoderOptions options)
    : tokenizer_(tokenizer), template_(chat_template), options_(options) {
  if (tokenizer.bos_id() >= 0) bos_text_ = tokenizer.id_to_piece(tokenizer.bos_id());
}

std::vector<TextSegment> SampleEncoder::segments(const Conversation& conversation) const {
  std::vector<TextSegment> segs = role_segments(conversation);
  if (options_.train_on == TrainOn::kAll) return segs;
  return split_trailing_whitespace(std::move(segs));
}

std::vector<TextSegment> SampleEncoder::role_segments(const Conversation& conversation) const {
  const Json& messages = conversation.messages;
  const size_t n = messages.size();
  const std::string full = template_.render(messages, conversation.tools, false);
  size_t last_assistant = n;
  for (size_t i = 0; i < n; ++i)
    if (messages[i].value("role", "") == "assistant") last_assistant = i;

  auto not_prefix = [&](size_t i, const char* what) {
    throw SampleError("template_not_incremental",
                         cat(conversation.origin, ": the chat template (", template_.origin(), ") does not render ",
                             "this conversation prefix by prefix: ", what, " of message ", i,
                             " is not a prefix of the whole rendering, so loss masks cannot be derived from it"));
  };
  std::vector<TextSegment> out;
  auto push = [&](size_t begin, size_t end, bool trained, const std::string& role) {
    if (end > begin) out.push_back({full.substr(begin, end - begin), trained, role});
  };
  const bool train_all = options_.train_on == TrainOn::kAll;
  size_t done = 0;  // bytes of `full` already cut into segments
  for (size_t i = 0; i < n; ++i) {
    const std::string role = messages[i].value("role", "");
    const std::string through = i + 1 == n ? full : template_.render(head(messages, i + 1), conversation.tools, false);
    if (through.size() < done || !starts_with(full, through)) not_prefix(i, "the rendering through the end");
    if (role == "assistant") {
      const std::string before = template_.render(head(messages, i), conversation.tools, true);
      if (before.size() < done || !starts_with(through, before)) not_prefix(i, "the generation prompt");
      push(done, before.size(), train_all, "");
      const bool trained = train_all || options_.train_on == TrainOn::kAssistant || i == last_assistant;
      push(before.size(), through.size(), trained, role);
    } else {
      push(done, through.size(), train_all, role);
    }
    done = through.size();
  }
  push(done, full.size(), train_all, "");
  return out;
}

// The model learns to stop at the end-of-turn token (<|im_end|>); whitespace
// the template writes after it is not something to predict. A trained
// segment that ends "<special token>" + whitespace keeps the token trained
// and gives the whitespace its own untrained segment.
std::vector<TextSegment> SampleEncoder::split_trailing_whitespace(std::vector<TextSegment> segments) const {
  std::vector<TextSegment> out;
  for (TextSegment& seg : segments) {
    if (!seg.trained) {
      out.push_back(std::move(seg));
      continue;
    }
    // Where the trailing whitespace starts, and whether a special token ends there.
    size_t special_end = seg.text.size();
    while (special_end > 0 && is_space(seg.text[special_end - 1])) --special_end;
    bool tail_is_space = false;
    if (special_end < seg.text.size())
      for (const AddedToken& token : tokenizer_.added_tokens())
        if (token.special && token.content.size() <= special_end &&
            seg.text.compare(special_end - token.content.size(), token.content.size(), token.content) == 0)
          tail_is_space = true;
    if (!tail_is_space) {
      out.push_back(std::move(seg));
      continue;
    }
    TextSegment tail{seg.text.substr(special_end), false, seg.role};
    seg.text.resize(special_end);
    out.push_back(std::move(seg));
    out.push_back(std::move(tail));
  }
  return out;
}

bool SampleEncoder::needs_bos(const std::string& text) const {
  return tokenizer_.add_bos_token() && tokenizer_.bos_id() >= 0 && !(bos_text_.size() && starts_with(text, bos_text_));
}

std::vector<int32_t> SampleEncoder::encode_user_prompt(const std::string& user, const std::string& system) const {
  Json messages = Json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  messages.push_back({{"role", "user"}, {"content", user}});
  return encode_prompt(messages, nullptr);
}

std::vector<int32_t> SampleEncoder::encode_prompt(const Json& messages, const Json& tools) const {
  const std::string text = template_.render(messages, tools, true);
  std::vector<int32_t> ids;
  if (needs_bos(text)) ids.push_back(tokenizer_.bos_id());
  const std::vector<int32_t> rest = tokenizer_.encode(text, false);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

TokenSequence SampleEncoder::encode_segments(const std::vector<TextSegment>& segments, const std::string& origin,
                                             size_t prefix_bytes, size_t* prefix_tokens) const {
  std::string whole;
  std::vector<size_t> ends;  // ends[k]: where segment k ends in `whole`
  for (const TextSegment& seg : segments) {
    whole += seg.text;
    ends.push_back(whole.size());
  }
  // One tokenization of the whole text; each token's bytes say which segment it belongs to.
  const Encoding encoding = tokenizer_.encode_with_offsets(whole, false);
  TokenSequence seq;
  // Exactly one BOS: the tokenizer's, unless the template already wrote it.
  const bool add_bos = needs_bos(whole);
  if (add_bos) {
    seq.ids.push_back(tokenizer_.bos_id());
    seq.mask.push_back(0);
  }
  auto segment_at = [&](size_t byte) {  // the segment holding `byte`
    return static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), byte) - ends.begin());
  };
  size_t before_prefix = add_bos ? 1 : 0;
  for (size_t t = 0; t < encoding.ids.size(); ++t) {
    const auto span = encoding.spans[t];
    const size_t first = segment_at(span.begin);
    const size_t last = span.end > span.begin ? segment_at(span.end - 1) : first;
    const bool trained = first < segments.size() && segments[first].trained;
    for (size_t k = first + 1; k <= last && k < segments.size(); ++k)
      if (segments[k].trained != trained)
        throw SampleError("token_straddles_boundary",
                          cat(origin, ": token ", t, " (\"", tokenizer_.id_to_piece(encoding.ids[t]), "\") covers ",
                              excerpt(whole, span.begin), " across the end of ",
                              trained ? "trained" : "untrained", " text, so no loss mask can split it"));
    if (prefix_tokens && span.begin < prefix_bytes) {
      if (span.end > prefix_bytes)
        throw SampleError("token_straddles_boundary",
                          cat(origin, ": token ", t, " (\"", tokenizer_.id_to_piece(encoding.ids[t]),
                              "\") runs from the prompt into the completion near ", excerpt(whole, prefix_bytes)));
      ++before_prefix;
    }
    seq.ids.push_back(encoding.ids[t]);
    seq.mask.push_back(trained ? 1 : 0);
  }
  if (prefix_tokens) *prefix_tokens = before_prefix;
  if (tokenizer_.bos_id() >= 0 && std::count(seq.ids.begin(), seq.ids.end(), tokenizer_.bos_id()) > 1)
    throw SampleError("extra_bos", cat(origin, ": the text contains the BOS token \"", bos_text_,
                                       "\" after the start; a sample must hold exactly one BOS"));
  return seq;
}

TokenSequence SampleEncoder::encode(const Conversation& conversation, bool* truncated) const {
  if (truncated) *truncated = false;
  TokenSequence seq = encode_segments(segments(conversation), conversation.origin);
  if (seq.trained() == 0)
    throw SampleError("nothing_to_train", cat(conversation.origin, ": no token to train on (no assistant reply)"));
  const size_t limit = static_cast<size_t>(options_.max_length);
  if (limit > 0 && seq.ids.size() > limit) {
    if (options_.truncation == Truncation::kDrop)
      throw SampleError("too_long", cat(conversation.origin, ": ", seq.ids.size(), " tokens > max_length ", limit));
    if (options_.truncation == Truncation::kRight) {
      seq.ids.resize(limit);
      seq.mask.resize(limit);
    } else {
      // Keep a leading BOS, cut the oldest tokens after it.
      const size_t keep_head = seq.ids.front() == tokenizer_.bos_id() ? 1 : 0;
      const size_t cut = seq.ids.size() - limit;
      seq.ids.erase(seq.ids.begin() + keep_head, seq.ids.begin() + keep_head + cut);
      seq.mask.erase(seq.mask.begin() + keep_head, seq.mask.begin() + keep_head + cut);
    }
    if (truncated) *truncated = true;
    if (seq.trained() == 0)
      throw SampleError("nothing_to_train_after_truncation",
                           cat(conversation.origin, ": no trained token left after truncation to ", limit));
  }
  return seq;
}

TokenPair SampleEncoder::encode_pair(const PreferencePair& pair, bool* truncated) const {
  if (truncated) *truncated = false;
  const std::string prompt_text = template_.render(pair.prompt, pair.tools, true);
  TokenPair out;
  auto completion = [&](const Json& answer, const char* which) {
    Conversation whole{pair.prompt, pair.tools, cat(pair.origin, " (", which, ")")};
    for (const Json& m : answer) whole.messages.push_back(m);
    std::vector<TextSegment> segs = role_segments(whole);
    // The prompt (with its generation prompt) is the untrained first part.
    std::vector<TextSegment> cut{{prompt_text, false, ""}};
    size_t offset = 0;
    for (TextSegment& seg : segs) {
      const size_t end = offset + seg.text.size();
      if (end <= prompt_text.size()) {
        offset = end;
        continue;
      }
      if (offset < prompt_text.size()) seg.text.erase(0, prompt_text.size() - offset);
      offset = end;
      cut.push_back(std::move(seg));
    }
    std::string rendered;
    for (const TextSegment& seg : cut) rendered += seg.text;
    if (offset < prompt_text.size() || !starts_with(rendered, prompt_text))
      throw SampleError("template_not_incremental",
                           cat(whole.origin, ": the prompt rendered with the generation prompt is not a prefix of ",
                               "prompt + completion rendered by ", template_.origin()));
    if (options_.train_on != TrainOn::kAll) cut = split_trailing_whitespace(std::move(cut));
    else cut.front().trained = false;  // never train on the prompt of a pair
    size_t prompt_tokens = 0;
    TokenSequence seq = encode_segments(cut, whole.origin, prompt_text.size(), &prompt_tokens);
    std::vector<int32_t> prompt(seq.ids.begin(), seq.ids.begin() + prompt_tokens);
    if (out.prompt.empty()) out.prompt = prompt;
    ST_CHECK(out.prompt == prompt, "prompt tokens differ between chosen and rejected");
    TokenSequence answer_tokens;
    answer_tokens.ids.assign(seq.ids.begin() + prompt_tokens, seq.ids.end());
    answer_tokens.mask.assign(seq.mask.begin() + prompt_tokens, seq.mask.end());
    if (answer_tokens.trained() == 0)
      throw SampleError("nothing_to_train", cat(whole.origin, ": the completion has no token to train on"));
    return answer_tokens;
  };
  out.chosen = completion(pair.chosen, "chosen");
  out.rejected = completion(pair.rejected, "rejected");
  // Identical completions teach nothing (every pairwise loss sees a zero
  // margin) and usually mean a broken record.
  if (out.chosen.ids == out.rejected.ids)
    throw SampleError("chosen_equals_rejected", cat(pair.origin, ": chosen and rejected are the same tokens"));

  const size_t limit = static_cast<size_t>(options_.max_length);
  const size_t longest = std::max(out.chosen.ids.size(), out.rejected.ids.size());
  if (limit == 0 || out.prompt.size() + longest <= limit) return out;
  if (options_.truncation == Truncation::kDrop)
    throw SampleError("too_long", cat(pair.origin, ": prompt ", out.prompt.size(), " + completion ", longest,
                                         " tokens > max_length ", limit));
  if (truncated) *truncated = true;
  const size_t keep_head = out.prompt.front() == tokenizer_.bos_id() ? 1 : 0;
  if (options_.truncation == Truncation::kLeft && out.prompt.size() > keep_head) {
    // Cut the prompt's oldest tokens first, as TRL keeps the end of the prompt.
    const size_t excess = out.prompt.size() + longest - limit;
    const size_t cut = std::min(excess, out.prompt.size() - keep_head);
    out.prompt.erase(out.prompt.begin() + keep_head, out.prompt.begin() + keep_head + cut);
  }
  const size_t room = limit > out.prompt.size() ? limit - out.prompt.size() : 0;
  for (TokenSequence* seq : {&out.chosen, &out.rejected}) {
    if (seq->ids.size() > room) {
      seq->ids.resize(room);
      seq->mask.resize(room);
    }
    if (seq->trained() == 0)
      throw SampleError("nothing_to_train_after_truncation",
                           cat(pair.origin, ": no trained completion token left after truncation to ", limit));
  }
  return out;
}

}  // namespace st::datasets
