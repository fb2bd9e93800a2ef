// salamandra-tune init: a random-initialised model dir that transformers loads.
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "model/model_dir.h"
#include "tokenizer/tokenizer.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace st::cli {
namespace fs = std::filesystem;

int run_init(int argc, char** argv) {
  std::string preset, config_path, out, tokenizer_dir, dtype = "bfloat16";
  int64_t seed = 0, max_shard_mb = 5000, vocab_size = 0;
  Args args("init", "Writes a random-initialised Hugging Face model dir (config.json, generation_config.json,\n"
                    "safetensors weights, and the tokenizer files when --tokenizer is given).");
  args.option("preset", "NAME", "architecture preset: salamandra-2b, salamandra-7b, salamandra-40b, tiny, tiny-gqa",
              &preset);
  args.option("config", "FILE", "architecture from a Hugging Face config.json instead of a preset", &config_path);
  args.option("out", "DIR", "the model dir to create (must not exist)", &out, /*required=*/true);
  args.option("seed", "N", "random seed of the initialisation", &seed);
  args.option("tokenizer", "DIR", "copy tokenizer.model and tokenizer_config.json from this dir", &tokenizer_dir);
  args.option("vocab-size", "N", "the vocabulary size without --tokenizer (0 keeps the preset's); with --tokenizer "
              "it comes from the tokenizer", &vocab_size);
  args.option("dtype", "TYPE", "stored weight dtype: bfloat16 or float32", &dtype);
  args.option("max-shard-mb", "MB", "shard the weights above this size (as save_pretrained's max_shard_size)",
              &max_shard_mb);
  if (!args.parse(argc, argv)) return 0;
  if (preset.empty() == config_path.empty()) throw UsageError("give exactly one of --preset and --config");
  if (max_shard_mb <= 0) throw UsageError("--max-shard-mb must be positive");
  if (fs::exists(out)) fail(out, ": already exists (init never overwrites a model dir)");

  ModelConfig config = preset.empty() ? ModelConfig::load(config_path) : ModelConfig::preset(preset);
  if (vocab_size < 0) throw UsageError("--vocab-size must be positive");
  if (!tokenizer_dir.empty()) {
    // The vocabulary is the tokenizer's: rows beyond its pieces would be
    // ids that nothing can decode, and fewer rows than pieces cannot embed
    // them.
    const int64_t pieces = Tokenizer::load(tokenizer_dir).vocab_size();
    if (vocab_size > 0 && vocab_size != pieces)
      fail("--vocab-size ", vocab_size, " does not match the ", pieces, " pieces of the tokenizer in ", tokenizer_dir,
           " (leave --vocab-size out to take the tokenizer's)");
    if (config.vocab_size != pieces)
      std::cout << "vocab_size " << pieces << " from the tokenizer in " << tokenizer_dir << " (the "
                << (preset.empty() ? config_path : "preset " + preset) << " says " << config.vocab_size << ")\n";
    config.vocab_size = pieces;
  } else if (vocab_size > 0) {
    config.vocab_size = vocab_size;
  }
  config.validate(preset.empty() ? config_path : "preset " + preset);
  LlamaModel model(config, tensor_options("float32", "cpu"));
  model.init_random(static_cast<uint64_t>(seed));

  // Build the dir under a temporary name and rename it: a killed init
  // leaves no half-written model dir behind.
  const std::string temp = out + ".tmp-init";
  fs::remove_all(temp);
  struct RemoveOnFailure {
    std::string path;
    bool keep = false;
    ~RemoveOnFailure() {
      std::error_code ignored;
      if (!keep) fs::remove_all(path, ignored);
    }
  } cleanup{temp};
  SaveOptions save;
  save.dtype = tensor_options(dtype, "cpu").dtype().toScalarType();
  save.max_shard_bytes = static_cast<uint64_t>(max_shard_mb) << 20;
  save_model(model, temp, save);
  if (!tokenizer_dir.empty()) copy_model_dir_files(tokenizer_dir, temp);
  fs::rename(temp, out);
  cleanup.keep = true;
  std::cout << "wrote " << out << ": " << config.num_parameters() << " parameters, " << config.num_hidden_layers
            << " layers, hidden " << config.hidden_size << ", vocab " << config.vocab_size << "\n";
  return 0;
}

}  // namespace st::cli
