// Trains a Salamandra-style SentencePiece BPE tokenizer and writes a Hugging
// Face tokenizer directory (tokenizer.model, tokenizer_config.json,
// special_tokens_map.json) that st::Tokenizer and transformers both load.
//
// The recipe follows BSC's training config (shared/data/salamandra_tokenizer):
// byte fallback, split digits, whitespace-only pieces allowed, no whitespace
// collapsing, ids <unk>=0 <s>=1 </s>=2 <pad>=3 <|im_start|>=4 <|im_end|>=5,
// reserved control tokens, and runs of spaces/tabs/newlines plus "\r" as
// user-defined pieces. Only the vocabulary size differs, so tests can train
// a small one in seconds.
#pragma once

#include <string>
#include <vector>

namespace st {

/// What to train on and how big a vocabulary to build; defaults follow BSC.
struct TokenizerTrainingOptions {
  /// Plain UTF-8 text files, one sentence per line (decompress .gz first).
  std::vector<std::string> input_files;
  /// Total vocabulary size, all special and byte pieces included.
  int vocab_size = 8000;
  /// At most this many input lines are read, the first ones (no sampling,
  /// so the result depends only on the input bytes).
  int max_sentences = 1000000;
  /// Training threads; the result does not depend on it.
  int num_threads = 2;
  /// Runs of spaces of length 2..N become user-defined pieces.
  int space_runs = 24;
  /// Runs of tabs of length 1..N become user-defined pieces.
  int tab_runs = 6;
  /// Runs of newlines of length 1..N become user-defined pieces.
  int newline_runs = 3;
  /// Control pieces <|reserved_token_1|> .. <|reserved_token_N|>, ids 6...
  int reserved_tokens = 98;
  /// model_max_length written to tokenizer_config.json.
  int model_max_length = 8192;
  /// System prompt the chat template inserts when a conversation has none;
  /// empty: the template inserts no system turn.
  std::string default_system_prompt;
};

/// Trains the tokenizer and writes tokenizer.model, tokenizer_config.json and
/// special_tokens_map.json into out_dir (created if missing), each atomically.
/// Deterministic: the same inputs and options give the same bytes.
void build_salamandra_tokenizer(const TokenizerTrainingOptions& options,
                                const std::string& out_dir);

/// The ChatML chat template written into tokenizer_config.json.
std::string chatml_template(const std::string& default_system_prompt);

}  // namespace st
