// Driver of bench_tokenizer_load.py: loads the tokenizer of a model dir the
// way every command does (st::Tokenizer::load), encodes one line so the load
// cannot be optimised away, and prints JSON: the load time and the process's
// peak RSS (ru_maxrss), which the script compares with AutoTokenizer's.
//   bench_tokenizer_load MODEL_DIR
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: bench_tokenizer_load MODEL_DIR\n");
    return 2;
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    st::Tokenizer tok = st::Tokenizer::load(argv[1]);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const size_t ids = tok.encode("Hola, com estàs? The quick brown fox.").size();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("{\"load_s\": %.6f, \"pieces\": %d, \"encoded_ids\": %zu, \"peak_rss_kb\": %ld}\n", load_s,
                tok.vocab_size(), ids, usage.ru_maxrss);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
