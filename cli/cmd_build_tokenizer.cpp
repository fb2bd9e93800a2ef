// salamandra-tune build-tokenizer: a Salamandra-style SentencePiece BPE.
#include <iostream>

#include "common/error.h"
#include "tokenizer/tokenizer_builder.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace st::cli {

int run_build_tokenizer(int argc, char** argv) {
  std::vector<std::string> inputs;
  std::string out;
  int64_t vocab_size = 8000, max_sentences = 1000000;
  Args args("build-tokenizer",
            "Trains a SentencePiece BPE tokenizer with the recipe of BSC's Salamandra tokenizer (byte fallback,\n"
            "split digits, whitespace runs as pieces, <|im_start|>/<|im_end|> at ids 4/5, 98 reserved tokens)\n"
            "and writes tokenizer.model, tokenizer_config.json and special_tokens_map.json into --out.");
  args.repeated("input", "FILE", "plain UTF-8 training text, one sentence per line", &inputs);
  args.option("out", "DIR", "directory to write the tokenizer files into", &out, /*required=*/true);
  args.option("vocab-size", "N", "vocabulary size (Salamandra: 256000)", &vocab_size);
  args.option("max-sentences", "N", "read at most this many input lines", &max_sentences);
  if (!args.parse(argc, argv)) return 0;
  if (inputs.empty()) throw UsageError("give at least one --input FILE");
  TokenizerTrainingOptions options;
  options.input_files = inputs;
  options.vocab_size = static_cast<int>(vocab_size);
  options.max_sentences = static_cast<int>(max_sentences);
  build_salamandra_tokenizer(options, out);
  std::cout << "wrote tokenizer with " << vocab_size << " pieces to " << out << "\n";
  return 0;
}

}  // namespace st::cli
