#include "datasets/prepare.h"

#include "datasets/sample_error.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "datasets/unrendered_fields.h"

namespace fs = std::filesystem;

namespace st::datasets {

namespace {

// Bumped whenever the cache layout or the encoding rules change, so caches
// written by an older salamandra-tune are rebuilt rather than trusted.
// v2: masks from one tokenization of the whole text (token_straddles_boundary).
// v3: the stored report counts fields the template never renders.
// v4: a pair whose chosen and rejected are the same tokens is dropped.
constexpr const char* kCacheVersion = "salamandra-tune token cache v4";

std::string content_key(const DataConfig& config, const EncoderBundle& encoder, const std::vector<std::string>& files) {
  Digest digest;
  digest.field(kCacheVersion);
  for (const std::string& file : files) digest.field(digest_file(file));
  for (const char* name : kTokenizerFiles) {
    const fs::path path = fs::path(config.model_dir) / name;
    digest.field(name);
    digest.field(fs::exists(path) ? digest_file(path.string()) : std::string("absent"));
  }
  digest.field(encoder.chat_template.origin());
  digest.field(encoder.chat_template.source());
  digest.field(config.canonical_options);
  return digest.hex();
}

// The cache's place: one per (files, model dir, options) so a stale cache
// of the same recipe is replaced instead of piling up.
std::string cache_slot(const DataConfig& config, const std::vector<std::string>& files, const std::string& split) {
  Digest digest;
  for (const std::string& file : files) digest.field(fs::absolute(file).lexically_normal().string());
  digest.field(fs::absolute(config.model_dir).lexically_normal().string());
  digest.field(config.canonical_options);
  return (fs::path(config.cache_dir) / (split + "-" + digest.hex().substr(0, 16))).string();
}

void add_counts(std::map<std::string, size_t>& into, const std::map<std::string, size_t>& from) {
  for (const auto& [k, v] : from) into[k] += v;
}

}  // namespace

Json PrepareReport::to_json() const {
  return Json{{"split", split},     {"kind", kind == SampleKind::kChat ? "chat" : "preference"},
              {"records", records}, {"samples", samples},
              {"truncated", truncated}, {"dropped", dropped}, {"unrendered", unrendered},
              {"tokens", tokens},   {"trained_tokens", trained_tokens},
              {"seconds", seconds}};
}

PrepareReport PrepareReport::from_json(const Json& j) {
  PrepareReport r;
  r.split = j.value("split", "");
  r.kind = j.value("kind", "chat") == "chat" ? SampleKind::kChat : SampleKind::kPreference;
  r.records = j.value("records", size_t(0));
  r.samples = j.value("samples", size_t(0));
  r.truncated = j.value("truncated", size_t(0));
  if (j.contains("dropped")) r.dropped = j["dropped"].get<std::map<std::string, size_t>>();
  if (j.contains("unrendered")) r.unrendered = j["unrendered"].get<std::map<std::string, size_t>>();
  r.tokens = j.value("tokens", size_t(0));
  r.trained_tokens = j.value("trained_tokens", size_t(0));
  r.seconds = j.value("seconds", 0.0);
  return r;
}

EncoderBundle load_encoder(const DataConfig& config) {
  Tokenizer tokenizer = Tokenizer::load(config.model_dir);
  // Name the template's file in messages, as Tokenizer::load found it.
  const fs::path jinja_file = fs::path(config.model_dir) / "chat_template.jinja";
  const std::string origin = !config.chat_template_file.empty() ? config.chat_template_file
                             : fs::exists(jinja_file)           ? jinja_file.string()
                                                                : (fs::path(config.model_dir) / "tokenizer_config.json").string();
  ChatTemplate chat_template =
      config.chat_template_file.empty()
          ? ChatTemplate::for_tokenizer(tokenizer, config.template_vars, origin)
          : ChatTemplate::from_source(read_file(config.chat_template_file), origin, tokenizer, config.template_vars);
  return {std::move(tokenizer), std::move(chat_template), config.encoder};
}

SampleKind split_kind(const DataConfig& config, const std::vector<std::string>& files) {
  if (config.reader.format != DataFormat::kAuto) return sample_kind(config.reader.format);
  ST_CHECK(!files.empty());
  return sample_kind(detect_file_format(files.front(), config.reader));
}

std::vector<EncodedSample> encode_samples(const SampleEncoder& encoder, const std::vector<Conversation>& chats,
                                          const std::vector<PreferencePair>& pairs, bool skip_invalid, int workers,
                                          const PrepareProgress& progress) {
  const size_t total = chats.size() + pairs.size();
  std::vector<EncodedSample> out(total);
  std::atomic<size_t> next{0}, done{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  size_t error_index = SIZE_MAX;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < total;) {
      EncodedSample& sample = out[i];
      try {
        if (i < chats.size()) {
          sample.sequences.push_back(encoder.encode(chats[i], &sample.truncated));
        } else {
          TokenPair pair = encoder.encode_pair(pairs[i - chats.size()], &sample.truncated);
          TokenSequence prompt{pair.prompt, std::vector<uint8_t>(pair.prompt.size(), 0)};
          sample.sequences = {std::move(prompt), std::move(pair.chosen), std::move(pair.rejected)};
        }
      } catch (const SampleError& e) {
        sample.dropped_reason = e.reason();
        sample.dropped_detail = e.what();
        if (!skip_invalid && !is_expected_drop(e.reason())) {
          std::lock_guard<std::mutex> lock(error_mutex);
          // Report the first failing sample in file order, whatever thread hit it.
          if (i < error_index) error_index = i, error = std::current_exception();
        }
      } catch (const Error& e) {
        // Template errors (raise_exception, undefined values) of one sample.
        const std::string& origin = i < chats.size() ? chats[i].origin : pairs[i - chats.size()].origin;
        sample.dropped_reason = "template_error";
        sample.dropped_detail = cat(origin, ": ", e.what());
        if (!skip_invalid) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (i < error_index) error_index = i, error = std::make_exception_ptr(Error(sample.dropped_detail));
        }
      }
      const size_t finished = done.fetch_add(1) + 1;
      if (progress && (finished % 1024 == 0 || finished == total)) {
        std::lock_guard<std::mutex> lock(error_mutex);
        progress(finished, total);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < std::max(1, workers); ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

std::string prepare_split(const DataConfig& config, const EncoderBundle& encoder,
                          const std::vector<std::string>& files, const std::string& split, PrepareReport* report,
                          const PrepareProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  const std::string dir = cache_slot(config, files, split);
  const std::string key = content_key(config, encoder, files);
  if (fs::exists(fs::path(dir) / "meta.json")) {
    try {
      TokenCache cache = TokenCache::open(dir);
      if (cache.meta().value("key", "") == key) {
        if (report) {
          *report = PrepareReport::from_json(cache.meta()["report"]);
          report->reused = true;
          report->cache_dir = dir;
        }
        return dir;
      }
    } catch (const Error&) {
      // Unreadable: rebuilt below like a stale one.
    }
  }
  PrepareReport r;
  r.split = split;
  r.cache_dir = dir;
  r.kind = split_kind(config, files);
  SampleEncoder sample_encoder(encoder.tokenizer, encoder.chat_template, encoder.options);
  const UnrenderedFields unrendered(encoder.chat_template);
  TokenCacheWriter writer(dir);
  // Files stream through in blocks: reading holds one block of samples,
  // encoding runs on all cores per block, and the cache is appended in order.
  constexpr size_t kBlock = 16384;
  size_t done = 0;
  auto write_block = [&](const std::vector<EncodedSample>& encoded) {
    for (const EncodedSample& sample : encoded) {
      if (!sample.dropped_reason.empty()) {
        ++r.dropped[sample.dropped_reason];
        continue;
      }
      ++r.samples;
      r.truncated += sample.truncated;
      for (const TokenSequence& seq : sample.sequences) {
        writer.add(seq.ids, seq.mask);
        r.tokens += seq.ids.size();
        r.trained_tokens += seq.trained();
      }
    }
    done += encoded.size();
    if (progress) progress(done, 0);
  };
  for (const std::string& file : files) {
    ReadStats stats;
    if (r.kind == SampleKind::kChat) {
      read_conversation_blocks(file, config.reader, kBlock, [&](std::vector<Conversation>& chats) {
        for (const Conversation& chat : chats) unrendered.count(chat, r.unrendered);
        write_block(encode_samples(sample_encoder, chats, {}, config.reader.skip_invalid, config.workers));
      }, &stats);
    } else {
      read_preference_blocks(file, config.reader, kBlock, [&](std::vector<PreferencePair>& pairs) {
        for (const PreferencePair& pair : pairs) unrendered.count(pair, r.unrendered);
        write_block(encode_samples(sample_encoder, {}, pairs, config.reader.skip_invalid, config.workers));
      }, &stats);
    }
    if (stats.format != DataFormat::kAuto && sample_kind(stats.format) != r.kind)
      fail(file, ": holds ", data_format_name(stats.format), " data, but the other files of the ", split,
           " split hold ", r.kind == SampleKind::kChat ? "chat" : "preference", " data");
    r.records += stats.records;
    add_counts(r.dropped, stats.skipped);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writer.finish(Json{{"key", key},
                     {"kind", r.kind == SampleKind::kChat ? "chat" : "preference"},
                     {"sequences_per_sample", r.kind == SampleKind::kChat ? 1 : 3},
                     {"files", files},
                     {"model_dir", config.model_dir},
                     {"chat_template", encoder.chat_template.origin()},
                     {"report", r.to_json()}});
  if (report) *report = r;
  return dir;
}

}  // namespace st::datasets
