// A small Salamandra-style tokenizer for tests, trained in a second or two
// on deterministic multilingual text.
#pragma once

#include <string>

namespace st::test {

/// Fixed sentences in several languages plus words made of syllables,
/// enough for a few hundred BPE merges.
std::string multilingual_training_text();

/// Trains a tokenizer of `vocab_size` on that text into `dir` (created),
/// with the built-in ChatML chat template and no default system prompt.
void build_test_tokenizer(const std::string& dir, int vocab_size = 800);

}  // namespace st::test
