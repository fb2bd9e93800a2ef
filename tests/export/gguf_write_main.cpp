// Writes gguf_values.h's sample file to argv[1], for the gguf-py check.
#include <cstdio>

#include "tests/export/gguf_values.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_write_main OUT.gguf\n");
    return 2;
  }
  st::gguf_test::write_sample(argv[1]);
  return 0;
}
