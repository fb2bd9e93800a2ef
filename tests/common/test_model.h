// A small Llama config for tests: GQA 6/2, odd sizes, two layers.
#pragma once

#include "model/config.h"

namespace st::test {

inline ModelConfig small_model_config(int64_t vocab_size) {
  ModelConfig c = ModelConfig::preset("tiny-gqa");
  c.vocab_size = vocab_size;
  c.hidden_size = 48;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 77;
  c.num_hidden_layers = 2;
  return c;
}

}  // namespace st::test
