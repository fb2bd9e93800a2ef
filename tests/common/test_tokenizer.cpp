#include "tests/common/test_tokenizer.h"

#include <cstdint>
#include <filesystem>

#include "common/atomic_file.h"
#include "tokenizer/tokenizer_builder.h"

namespace st::test {

// Deterministic multilingual training text: fixed sentences plus words made
// of syllables, enough for a few hundred BPE merges.
std::string multilingual_training_text() {
  const char* fixed[] = {
      "Hola, ¿qué tal? El veloz murciélago hindú comía feliz cardillo y kiwi.",
      "Bon dia! La mare de Déu, quin fred que fa avui a la muntanya.",
      "The quick brown fox jumps over the lazy dog 12 times in 2024.",
      "Der schnelle braune Fuchs springt über den faulen Hund.",
      "Ο γρήγορος καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
      "Швидка бура лисиця перестрибує через ледачого пса.",
      "    for (int i = 0; i < n; ++i) {\tsum += x[i];\t}",
  };
  const char* syllables[] = {"ka", "ri", "mo", "ta", "len", "sa", "tu", "ne", "ci", "do",
                             "ver", "ma", "lo", "pi", "es", "on", "ar", "ul", "ge", "bi"};
  std::string text;
  uint32_t state = 12345;
  for (int line = 0; line < 400; ++line) {
    text += fixed[line % 7];
    text += ' ';
    for (int w = 0; w < 8; ++w) {
      state = state * 1103515245u + 12345u;
      int n = 1 + (state >> 16) % 4;
      for (int s = 0; s < n; ++s) {
        state = state * 1103515245u + 12345u;
        text += syllables[(state >> 16) % 20];
      }
      text += w % 3 == 2 ? "  " : " ";
    }
    text += "\n";
  }
  return text;
}

void build_test_tokenizer(const std::string& dir, int vocab_size) {
  std::filesystem::create_directories(dir);
  const std::string text_path = dir + "/.training_text.txt";
  write_file_atomic(text_path, multilingual_training_text());
  TokenizerTrainingOptions options;
  options.input_files = {text_path};
  options.vocab_size = vocab_size;
  build_salamandra_tokenizer(options, dir);
  std::filesystem::remove(text_path);
}

}  // namespace st::test
