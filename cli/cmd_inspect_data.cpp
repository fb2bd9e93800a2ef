// salamandra-tune inspect-data: what training will see. Renders the first
// samples of a recipe's training data through the chat template with the
// trained tokens highlighted, then statistics over all of it. With
// --format jsonl, one object per sample (text, ids, mask) for scripts and tests.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <span>
#include <tuple>

#include "common/error.h"
#include "datasets/data_config.h"
#include "datasets/prepare.h"
#include "datasets/sample_error.h"
#include "datasets/unrendered_fields.h"
#include "dpo/dpo_config.h"
#include "tokenizer/tokenizer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/data_report.h"

namespace st::cli {
namespace {

// Trained text in green on a terminal; between markers otherwise.
struct Highlight {
  const char* open;
  const char* close;
};

void print_segments(const std::vector<datasets::TextSegment>& segments, const Highlight& hl) {
  for (const datasets::TextSegment& seg : segments) {
    if (seg.trained) std::fputs(hl.open, stdout);
    std::fputs(seg.text.c_str(), stdout);
    if (seg.trained) std::fputs(hl.close, stdout);
  }
}

// The text of exactly the tokens training sees (after truncation), cut
// where the mask changes: each run of tokens is the difference between the
// decodings of the ids up to its end and up to its start, so tokens that
// decode together (byte fallback) stay together and nothing is re-rendered.
std::vector<datasets::TextSegment> token_segments(const Tokenizer& tokenizer, const datasets::TokenSequence& seq) {
  std::vector<datasets::TextSegment> out;
  std::string before;
  const std::span<const int32_t> ids(seq.ids);
  for (size_t start = 0; start < ids.size();) {
    size_t end = start + 1;
    while (end < ids.size() && (seq.mask[end] != 0) == (seq.mask[start] != 0)) ++end;
    std::string upto = tokenizer.decode(ids.first(end));
    const bool extends = upto.compare(0, before.size(), before) == 0;
    out.push_back({extends ? upto.substr(before.size()) : tokenizer.decode(ids.subspan(start, end - start)),
                   seq.mask[start] != 0, ""});
    before = std::move(upto);
    start = end;
  }
  return out;
}

std::string joined(const std::vector<datasets::TextSegment>& segments) {
  std::string text;
  for (const auto& seg : segments) text += seg.text;
  return text;
}

datasets::Json sequence_json(const datasets::TokenSequence& seq) {
  return datasets::Json{{"ids", seq.ids}, {"mask", seq.mask}};
}

}  // namespace

int run_inspect_data(int argc, char** argv) {
  std::string recipe_path, format = "text";
  std::vector<std::string> overrides;
  int64_t count = 3;
  Args args("inspect-data",
            "Shows the recipe's training samples as the model will see them: the rendered chat template with\n"
            "the trained tokens highlighted, then statistics (samples, tokens, trained tokens, drops,\n"
            "truncations, length histogram, packing efficiency).");
  args.positional("RECIPE", "the recipe (TOML)", &recipe_path);
  args.rest("section.key=value", "override a recipe key", &overrides);
  args.option("n", "N", "samples to show (0: all)", &count);
  args.option("format", "text|jsonl",
              "text: the samples' tokens as training sees them, and statistics; jsonl: one object per sample (text: "
              "the rendering, or for a truncated sample the text of the kept tokens; ids; mask)",
              &format);
  args.epilog("data keys (the recipe's [model] path and [data] section):\n" + describe_schema(datasets::data_schema()));
  if (!args.parse(argc, argv)) return 0;
  if (format != "text" && format != "jsonl") throw UsageError("--format must be text or jsonl");
  if (count < 0) throw UsageError("--n must be >= 0");

  // dpo recipes hold every key an sft recipe may: both load with its schema.
  const Recipe recipe = Recipe::load(recipe_path, dpo::dpo_schema(), overrides);
  const datasets::DataConfig config = datasets::data_config(recipe);
  const datasets::EncoderBundle bundle = datasets::load_encoder(config);
  const datasets::SampleEncoder encoder(bundle.tokenizer, bundle.chat_template, bundle.options);
  const datasets::SampleKind kind = datasets::split_kind(config, config.train_files);
  const datasets::UnrenderedFields unrendered(bundle.chat_template);

  datasets::PrepareReport report;
  report.split = "train";
  report.kind = kind;
  std::vector<uint32_t> lengths;
  std::vector<datasets::TokenSequence> chat_sequences;
  const bool jsonl = format == "jsonl";
  const bool tty = ::isatty(STDOUT_FILENO);
  const Highlight hl = tty ? Highlight{"\x1b[42;30m", "\x1b[0m"} : Highlight{"[[", "]]"};
  if (!jsonl)
    std::printf("chat template: %s\ntrained text is %s\n\n", bundle.chat_template.origin().c_str(),
                tty ? "\x1b[42;30mhighlighted\x1b[0m" : "between [[ and ]]");
  int64_t shown = 0;
  for (const std::string& file : config.train_files) {
    datasets::ReadStats stats;
    std::vector<datasets::Conversation> chats;
    std::vector<datasets::PreferencePair> pairs;
    if (kind == datasets::SampleKind::kChat) chats = datasets::read_conversations(file, config.reader, &stats);
    else pairs = datasets::read_preferences(file, config.reader, &stats);
    report.records += stats.records;
    for (const auto& [reason, n] : stats.skipped) report.dropped[reason] += n;
    for (const auto& chat : chats) unrendered.count(chat, report.unrendered);
    for (const auto& pair : pairs) unrendered.count(pair, report.unrendered);
    // Shown samples are encoded even when dropped, to say why.
    const std::vector<datasets::EncodedSample> encoded =
        datasets::encode_samples(encoder, chats, pairs, /*skip_invalid=*/true, config.workers);
    for (size_t i = 0; i < encoded.size(); ++i) {
      const datasets::EncodedSample& sample = encoded[i];
      const std::string& origin = i < chats.size() ? chats[i].origin : pairs[i].origin;
      // The same policy as prepare: errors the recipe does not allow to skip stop here.
      if (!sample.dropped_reason.empty() && !config.reader.skip_invalid &&
          !datasets::is_expected_drop(sample.dropped_reason))
        fail(sample.dropped_detail);
      if (sample.dropped_reason.empty()) {
        ++report.samples;
        report.truncated += sample.truncated;
        for (const datasets::TokenSequence& seq : sample.sequences) {
          report.tokens += seq.ids.size();
          report.trained_tokens += seq.trained();
        }
        if (kind == datasets::SampleKind::kChat) {
          lengths.push_back(static_cast<uint32_t>(sample.sequences[0].ids.size()));
          chat_sequences.push_back(sample.sequences[0]);
        } else {
          lengths.push_back(static_cast<uint32_t>(sample.sequences[0].ids.size() +
                                                  std::max(sample.sequences[1].ids.size(),
                                                           sample.sequences[2].ids.size())));
        }
      } else {
        ++report.dropped[sample.dropped_reason];
      }
      if (count != 0 && shown >= count) continue;
      ++shown;
      if (jsonl) {
        datasets::Json j{{"origin", origin}};
        if (!sample.dropped_reason.empty()) {
          j["dropped"] = sample.dropped_reason;
          j["detail"] = sample.dropped_detail;
        } else if (kind == datasets::SampleKind::kChat) {
          // The rendering when the sample is whole; the text of the kept
          // tokens when it was truncated.
          j["text"] = sample.truncated ? joined(token_segments(bundle.tokenizer, sample.sequences[0]))
                                       : joined(encoder.segments(chats[i]));
          j.update(sequence_json(sample.sequences[0]));
          j["truncated"] = sample.truncated;
        } else {
          const datasets::PreferencePair& pair = pairs[i];
          const std::string prompt = bundle.chat_template.render(pair.prompt, pair.tools, true);
          auto completion_text = [&](const datasets::Json& answer) {
            datasets::Json messages = pair.prompt;
            for (const auto& m : answer) messages.push_back(m);
            return bundle.chat_template.render(messages, pair.tools, false).substr(prompt.size());
          };
          j["prompt_text"] = prompt;
          j["chosen_text"] = completion_text(pair.chosen);
          j["rejected_text"] = completion_text(pair.rejected);
          j["prompt_ids"] = sample.sequences[0].ids;
          j["chosen"] = sequence_json(sample.sequences[1]);
          j["rejected"] = sequence_json(sample.sequences[2]);
          j["truncated"] = sample.truncated;
        }
        std::cout << j.dump(-1, ' ', false, datasets::Json::error_handler_t::replace) << "\n";
        continue;
      }
      std::printf("=== sample %lld  %s", static_cast<long long>(shown), origin.c_str());
      if (!sample.dropped_reason.empty()) {
        std::printf("  DROPPED (%s): %s\n\n", sample.dropped_reason.c_str(), sample.dropped_detail.c_str());
        continue;
      }
      const char* cut = sample.truncated ? " (truncated to max_length; shown as training sees it)" : "";
      if (kind == datasets::SampleKind::kChat) {
        // The counts of the statistics below: this sample's tokens and targets.
        std::printf("  %zu tokens, %zu trained%s\n", sample.sequences[0].ids.size(), sample.sequences[0].trained(),
                    cut);
        print_segments(token_segments(bundle.tokenizer, sample.sequences[0]), hl);
      } else {
        // The statistics count all three sequences' tokens and both
        // completions' targets; so does this line.
        const auto& [prompt, chosen, rejected] =
            std::tie(sample.sequences[0], sample.sequences[1], sample.sequences[2]);
        std::printf("  %zu tokens (prompt %zu, chosen %zu, rejected %zu), %zu trained%s\n",
                    prompt.ids.size() + chosen.ids.size() + rejected.ids.size(), prompt.ids.size(), chosen.ids.size(),
                    rejected.ids.size(), chosen.trained() + rejected.trained(), cut);
        for (const auto* completion : {&chosen, &rejected}) {
          std::printf("--- prompt + %s\n", completion == &chosen ? "chosen" : "rejected");
          // Prompt and completion as one sequence, decoded as the model reads it.
          datasets::TokenSequence whole{prompt.ids, std::vector<uint8_t>(prompt.ids.size(), 0)};
          whole.ids.insert(whole.ids.end(), completion->ids.begin(), completion->ids.end());
          whole.mask.insert(whole.mask.end(), completion->mask.begin(), completion->mask.end());
          print_segments(token_segments(bundle.tokenizer, whole), hl);
        }
      }
      std::printf("\n");
    }
  }
  if (jsonl) {
    std::fprintf(stderr, "%s\n", report.to_json().dump().c_str());
    for (const std::string& warning :
         datasets::unrendered_warnings(report.unrendered, report.split, bundle.chat_template.origin()))
      std::fprintf(stderr, "%s\n", warning.c_str());
    return 0;
  }
  std::printf("=== statistics\n");
  const datasets::BatchOptions batching = datasets::batch_options(config, 1);
  datasets::PlanStats plan;
  if (kind == datasets::SampleKind::kChat) {
    std::vector<uint32_t> all(lengths.size());
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    datasets::SequenceView view{[&](uint32_t i) { return std::span<const uint32_t>(
                                                  reinterpret_cast<const uint32_t*>(chat_sequences[i].ids.data()),
                                                  chat_sequences[i].ids.size()); },
                            [&](uint32_t i) { return std::span<const uint8_t>(chat_sequences[i].mask); }};
    plan = datasets::plan_stats(datasets::plan_epoch(lengths, all, batching, 0), view, batching);
  }
  print_split_report(stdout, report, plan, batching, bundle.chat_template.origin());
  std::printf("  length histogram (tokens per %s):\n%s",
              kind == datasets::SampleKind::kChat ? "sample" : "pair: the prompt and the longer completion",
              length_histogram(lengths).c_str());
  return 0;
}

}  // namespace st::cli
