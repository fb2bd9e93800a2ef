// salamandra-tune inspect-data: what training will see. Renders the first
// samples of a recipe's training data through the chat template with the
// trained tokens highlighted, then statistics over all of it. With
// --format jsonl, one object per sample (text, ids, mask) for tools/tests.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/error.h"
#include "datasets/data_config.h"
#include "datasets/prepare.h"
#include "sft/sft_config.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/data_report.h"

namespace st::cli {
namespace {

// Trained text in green on a terminal; between markers otherwise.
struct Highlight {
  const char* open;
  const char* close;
};

void print_segments(const std::vector<data::TextSegment>& segments, const Highlight& hl) {
  for (const data::TextSegment& seg : segments) {
    if (seg.trained) std::fputs(hl.open, stdout);
    std::fputs(seg.text.c_str(), stdout);
    if (seg.trained) std::fputs(hl.close, stdout);
  }
}

data::Json sequence_json(const data::TokenSequence& seq) {
  return data::Json{{"ids", seq.ids}, {"mask", seq.mask}};
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
  args.option("format", "text|jsonl", "text: rendered samples and statistics; jsonl: one object per sample", &format);
  if (!args.parse(argc, argv)) return 0;
  if (format != "text" && format != "jsonl") throw UsageError("--format must be text or jsonl");
  if (count < 0) throw UsageError("--n must be >= 0");

  const Recipe recipe = Recipe::load(recipe_path, sft::sft_schema(), overrides);
  const data::DataConfig config = data::data_config(recipe);
  const data::EncoderBundle bundle = data::load_encoder(config);
  const data::SampleEncoder encoder(bundle.tokenizer, bundle.chat_template, bundle.options);
  const data::SampleKind kind = data::split_kind(config, config.train_files);

  data::PrepareReport report;
  report.split = "train";
  report.kind = kind;
  std::vector<uint32_t> lengths;
  std::vector<data::TokenSequence> chat_sequences;
  const bool jsonl = format == "jsonl";
  const bool tty = ::isatty(STDOUT_FILENO);
  const Highlight hl = tty ? Highlight{"\x1b[42;30m", "\x1b[0m"} : Highlight{"[[", "]]"};
  if (!jsonl)
    std::printf("chat template: %s\ntrained text is %s\n\n", bundle.chat_template.origin().c_str(),
                tty ? "\x1b[42;30mhighlighted\x1b[0m" : "between [[ and ]]");
  int64_t shown = 0;
  for (const std::string& file : config.train_files) {
    data::ReadStats stats;
    std::vector<data::Conversation> chats;
    std::vector<data::PreferencePair> pairs;
    if (kind == data::SampleKind::kChat) chats = data::read_conversations(file, config.reader, &stats);
    else pairs = data::read_preferences(file, config.reader, &stats);
    report.records += stats.records;
    for (const auto& [reason, n] : stats.skipped) report.dropped[reason] += n;
    // Shown samples are encoded even when dropped, to say why.
    const std::vector<data::EncodedSample> encoded =
        data::encode_samples(encoder, chats, pairs, /*skip_invalid=*/true, config.workers);
    for (size_t i = 0; i < encoded.size(); ++i) {
      const data::EncodedSample& sample = encoded[i];
      const std::string& origin = i < chats.size() ? chats[i].origin : pairs[i].origin;
      // The same policy as prepare: errors the recipe does not allow to skip stop here.
      if (!sample.dropped_reason.empty() && !config.reader.skip_invalid && !data::is_expected_drop(sample.dropped_reason))
        fail(sample.dropped_detail);
      if (sample.dropped_reason.empty()) {
        ++report.samples;
        report.truncated += sample.truncated;
        for (const data::TokenSequence& seq : sample.sequences) {
          report.tokens += seq.ids.size();
          report.trained_tokens += seq.trained();
        }
        if (kind == data::SampleKind::kChat) {
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
        data::Json j{{"origin", origin}};
        if (!sample.dropped_reason.empty()) {
          j["dropped"] = sample.dropped_reason;
          j["detail"] = sample.dropped_detail;
        } else if (kind == data::SampleKind::kChat) {
          std::string text;
          for (const auto& seg : encoder.segments(chats[i])) text += seg.text;
          j["text"] = text;
          j.update(sequence_json(sample.sequences[0]));
          j["truncated"] = sample.truncated;
        } else {
          const data::PreferencePair& pair = pairs[i];
          const std::string prompt = bundle.chat_template.render(pair.prompt, pair.tools, true);
          auto completion_text = [&](const data::Json& answer) {
            data::Json messages = pair.prompt;
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
        std::cout << j.dump(-1, ' ', false, data::Json::error_handler_t::replace) << "\n";
        continue;
      }
      std::printf("=== sample %lld  %s", static_cast<long long>(shown), origin.c_str());
      if (!sample.dropped_reason.empty()) {
        std::printf("  DROPPED (%s): %s\n\n", sample.dropped_reason.c_str(), sample.dropped_detail.c_str());
        continue;
      }
      std::printf("  %zu tokens, %zu trained%s\n", sample.sequences[0].ids.size() +
                      (kind == data::SampleKind::kChat ? 0 : sample.sequences[1].ids.size()),
                  sample.sequences[0].trained() + (kind == data::SampleKind::kChat ? 0 : sample.sequences[1].trained()),
                  sample.truncated ? " (truncated to max_length)" : "");
      if (kind == data::SampleKind::kChat) {
        print_segments(encoder.segments(chats[i]), hl);
      } else {
        const data::PreferencePair& pair = pairs[i];
        for (const char* which : {"chosen", "rejected"}) {
          data::Conversation whole{pair.prompt, pair.tools, origin};
          for (const auto& m : which[0] == 'c' ? pair.chosen : pair.rejected) whole.messages.push_back(m);
          std::printf("--- prompt + %s\n", which);
          std::vector<data::TextSegment> segs = encoder.segments(whole);
          // Only the completion is trained in a pair: untrain earlier turns.
          const size_t prompt_size = bundle.chat_template.render(pair.prompt, pair.tools, true).size();
          size_t offset = 0;
          for (auto& seg : segs) {
            if (offset < prompt_size) seg.trained = false;
            offset += seg.text.size();
          }
          print_segments(segs, hl);
        }
      }
      std::printf("\n");
    }
  }
  if (jsonl) {
    std::fprintf(stderr, "%s\n", report.to_json().dump().c_str());
    return 0;
  }
  std::printf("=== statistics\n");
  const data::BatchOptions batching = data::batch_options(config, 1);
  data::PlanStats plan;
  if (kind == data::SampleKind::kChat) {
    std::vector<uint32_t> all(lengths.size());
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    data::SequenceView view{[&](uint32_t i) { return std::span<const uint32_t>(
                                                  reinterpret_cast<const uint32_t*>(chat_sequences[i].ids.data()),
                                                  chat_sequences[i].ids.size()); },
                            [&](uint32_t i) { return std::span<const uint8_t>(chat_sequences[i].mask); }};
    plan = data::plan_stats(data::plan_epoch(lengths, all, batching, 0), view, batching);
  }
  print_split_report(stdout, report, plan, batching);
  std::printf("  length histogram (tokens per %s):\n%s", kind == data::SampleKind::kChat ? "sample" : "pair",
              length_histogram(lengths).c_str());
  return 0;
}

}  // namespace st::cli
