// salamandra-tune generate: text from a model dir, decoding defaults from its
// generation_config.json, stopping on eos and <|im_end|>. --chat renders the
// prompt as a user turn through the model's chat template, as an instruct
// model expects.
#include <cstdio>
#include <iostream>

#include "common/error.h"
#include "datasets/chat_template.h"
#include "datasets/sample_encoder.h"
#include "model/generation.h"
#include "model/model_dir.h"
#include "tokenizer/tokenizer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_source.h"

namespace st::cli {

int run_generate(int argc, char** argv) {
  ModelSource source;
  std::string prompt;
  ComputeFlags compute;
  // Left empty unless given: the model's generation_config.json decides.
  std::optional<int64_t> max_new_tokens, top_k;
  std::optional<double> temperature, top_p, repetition_penalty;
  bool sample = false, greedy = false, no_cache = false, raw_ids = false, chat = false;
  std::string system_prompt;
  int64_t seed = 0;
  Args args("generate", "Generates a continuation of --prompt. Sampling options default to the model's\n"
                        "generation_config.json; stops on eos and <|im_end|>.");
  source.add_to(args);
  args.option("prompt", "TEXT", "the prompt text (BOS is added as the tokenizer config says)", &prompt, true);
  args.flag("chat", "send --prompt as a user turn through the model's chat template (instruct models)", &chat);
  args.option("system", "TEXT", "with --chat: a system message (else the template's default, if any)",
              &system_prompt);
  args.option("max-new-tokens", "N", "tokens to generate at most [default: generation_config or 128]", &max_new_tokens);
  args.flag("sample", "sample instead of greedy decoding", &sample);
  args.flag("greedy", "greedy decoding even if generation_config.json samples", &greedy);
  args.option("temperature", "T", "sampling temperature", &temperature);
  args.option("top-k", "K", "keep the K most likely tokens (0: off)", &top_k);
  args.option("top-p", "P", "keep the smallest set with probability >= P", &top_p);
  args.option("repetition-penalty", "R", "penalise tokens already present (1: off)", &repetition_penalty);
  args.option("seed", "N", "sampling seed", &seed);
  args.flag("no-cache", "recompute the whole sequence each step instead of using the KV cache", &no_cache);
  args.flag("ids", "print the generated token ids instead of text", &raw_ids);
  compute.add_to(args);
  if (!args.parse(argc, argv)) return 0;
  if (sample && greedy) throw UsageError("--sample and --greedy exclude each other");
  if (!system_prompt.empty() && !chat) throw UsageError("--system needs --chat");

  at::TensorOptions options = compute.tensor_options();
  const std::string& model_dir = source.model_dir;
  Tokenizer tokenizer = Tokenizer::load(source.tokenizer_dir());
  auto model = source.load(options);
  GenerationSettings settings = load_generation_settings(model_dir, model->config());
  settings.max_new_tokens = max_new_tokens.value_or(settings.max_new_tokens);
  settings.temperature = temperature.value_or(settings.temperature);
  settings.top_k = top_k.value_or(settings.top_k);
  settings.top_p = top_p.value_or(settings.top_p);
  settings.repetition_penalty = repetition_penalty.value_or(settings.repetition_penalty);
  if (sample) settings.do_sample = true;
  if (greedy) settings.do_sample = false;
  settings.seed = static_cast<uint64_t>(seed);
  settings.use_cache = !no_cache;
  for (int64_t id : tokenizer.end_of_turn_ids()) settings.stop_ids.push_back(id);
  // Sampling options do nothing in greedy decoding: say so rather than
  // ignore them.
  if (!settings.do_sample && (temperature || top_k || top_p))
    throw UsageError(cat(temperature ? "--temperature" : top_k ? "--top-k" : "--top-p",
                         " applies only when sampling: add --sample (", model_dir,
                         "/generation_config.json does not sample)"));

  std::vector<int32_t> encoded;
  if (chat) {
    const datasets::ChatTemplate chat_template = datasets::ChatTemplate::for_tokenizer(tokenizer, {}, source.tokenizer_dir());
    encoded = datasets::SampleEncoder(tokenizer, chat_template, datasets::EncoderOptions{})
                  .encode_user_prompt(prompt, system_prompt);
  } else {
    encoded = tokenizer.encode(prompt);
  }
  std::vector<int64_t> prompt_ids(encoded.begin(), encoded.end());
  GenerationEnd end{};
  std::vector<int64_t> produced = generate(*model, prompt_ids, settings, {}, &end);
  if (raw_ids) {
    for (size_t i = 0; i < produced.size(); ++i) std::cout << (i ? " " : "") << produced[i];
    std::cout << "\n";
  } else {
    std::vector<int32_t> ids(produced.begin(), produced.end());
    std::cout << tokenizer.decode(ids, /*skip_special_tokens=*/true) << "\n";
  }
  std::cout.flush();
  if (end == GenerationEnd::kPositionLimit)
    std::fprintf(stderr, "generate: stopped after %zu new tokens at the model's position limit (%zu prompt tokens + "
                 "%zu = max_position_embeddings %lld)\n", produced.size(), prompt_ids.size(), produced.size(),
                 static_cast<long long>(model->config().max_position_embeddings));
  return 0;
}

}  // namespace st::cli
