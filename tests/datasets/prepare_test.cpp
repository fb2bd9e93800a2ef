// The token cache and `prepare`: files round-trip, a cache appears only
// complete, a matching cache is reused, a stale one rebuilt, a corrupt one
// refused with the file named; drops and truncations are counted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "datasets/prepare.h"
#include "datasets/token_cache.h"
#include "tests/common/test_tokenizer.h"

namespace fs = std::filesystem;
using namespace st::datasets;

namespace {

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("st_prepare_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    st::test::build_test_tokenizer((root_ / "model").string());
    write("train.jsonl",
          "{\"messages\": [{\"role\": \"user\", \"content\": \"Hola\"}, {\"role\": \"assistant\", \"content\": \"Bon dia!\"}]}\n"
          "{\"messages\": [{\"role\": \"user\", \"content\": \"Adéu\"}, {\"role\": \"assistant\", \"content\": \"Fins aviat.\"}]}\n"
          "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": \"sense resposta\"}]}\n");
    config_.model_dir = (root_ / "model").string();
    config_.train_files = {path("train.jsonl")};
    config_.cache_dir = path("cache");
    config_.workers = 2;
    config_.packing = true;  // DataConfig has no defaults of its own (the schema does)
    config_.bucket_window = 64;
    config_.canonical_options = "options-a";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string path(const std::string& name) const { return (root_ / name).string(); }
  void write(const std::string& name, const std::string& text) const { st::write_file_atomic(path(name), text); }
  std::string prepare(PrepareReport* report) const {
    return prepare_split(config_, load_encoder(config_), config_.train_files, "train", report);
  }
  fs::path root_;
  DataConfig config_;
};

TEST_F(PrepareTest, CacheHoldsTheEncodedSamplesAndCountsDrops) {
  PrepareReport report;
  const std::string dir = prepare(&report);
  EXPECT_FALSE(report.reused);
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(report.samples, 2u);
  EXPECT_EQ(report.dropped.at("nothing_to_train"), 1u);
  TokenCache cache = TokenCache::open(dir);
  ASSERT_EQ(cache.sequences(), 2u);
  EXPECT_EQ(cache.sequences_per_sample(), 1u);
  // Same ids and mask as encoding directly.
  EncoderBundle bundle = load_encoder(config_);
  SampleEncoder encoder(bundle.tokenizer, bundle.chat_template, bundle.options);
  Conversation c;
  c.messages = Json::parse(R"([{"role": "user", "content": "Adéu"}, {"role": "assistant", "content": "Fins aviat."}])");
  const TokenSequence expected = encoder.encode(c);
  auto ids = cache.ids(1);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.end()), expected.ids);
  auto mask = cache.mask(1);
  EXPECT_EQ(std::vector<uint8_t>(mask.begin(), mask.end()), expected.mask);
  EXPECT_EQ(cache.tokens(), report.tokens);
  // Nothing temporary is left behind.
  for (const auto& entry : fs::directory_iterator(config_.cache_dir))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

TEST_F(PrepareTest, MatchingCacheIsReusedStaleCacheRebuilt) {
  PrepareReport first, second, third, fourth;
  const std::string dir = prepare(&first);
  const auto built_at = fs::last_write_time(fs::path(dir) / "ids.bin");
  EXPECT_EQ(prepare(&second), dir);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.samples, first.samples);
  EXPECT_EQ(fs::last_write_time(fs::path(dir) / "ids.bin"), built_at);
  // Same file name, new content: same place, rebuilt.
  write("train.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hola\"}, {\"role\": \"assistant\", \"content\": \"Ei!\"}]}\n");
  EXPECT_EQ(prepare(&third), dir);
  EXPECT_FALSE(third.reused);
  EXPECT_EQ(third.samples, 1u);
  EXPECT_EQ(TokenCache::open(dir).sequences(), 1u);
  // A changed chat template changes the key too.
  st::write_file_atomic(path("template.jinja"), "{% for m in messages %}{{ m['content'] + '\\n' }}{% endfor %}");
  config_.chat_template_file = path("template.jinja");
  EXPECT_EQ(prepare(&fourth), dir);
  EXPECT_FALSE(fourth.reused);
}

TEST_F(PrepareTest, CorruptCacheIsRefusedByNameAndRebuiltByPrepare) {
  PrepareReport report;
  const std::string dir = prepare(&report);
  fs::resize_file(fs::path(dir) / "mask.bin", 3);
  try {
    TokenCache::open(dir);
    FAIL() << "a truncated mask.bin was accepted";
  } catch (const st::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask.bin"), std::string::npos) << e.what();
  }
  PrepareReport again;
  prepare(&again);
  EXPECT_FALSE(again.reused);
  EXPECT_NO_THROW(TokenCache::open(dir));
}

TEST_F(PrepareTest, AWriterThatDoesNotFinishLeavesNothing) {
  const std::string dir = path("cache/partial");
  fs::create_directories(path("cache"));
  {
    TokenCacheWriter writer(dir);
    const std::vector<int32_t> ids = {1, 2, 3};
    const std::vector<uint8_t> mask = {0, 1, 1};
    writer.add(ids, mask);
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::is_empty(path("cache")));
}

TEST_F(PrepareTest, SampleErrorsStopUnlessSkippingIsAllowed) {
  // A template that raises for the word "forbidden".
  st::write_file_atomic(path("strict.jinja"),
                        "{% for m in messages %}{% if 'forbidden' in m['content'] %}"
                        "{{ raise_exception('forbidden content') }}{% endif %}"
                        "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
                        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
  write("bad.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hola\"}, {\"role\": \"assistant\", \"content\": \"Ei\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"forbidden\"}, {\"role\": \"assistant\", \"content\": \"Ei\"}]}\n");
  config_.chat_template_file = path("strict.jinja");
  config_.train_files = {path("bad.jsonl")};
  try {
    prepare(nullptr);
    FAIL() << "a template error was not reported";
  } catch (const st::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("forbidden content"), std::string::npos) << e.what();
  }
  config_.reader.skip_invalid = true;
  PrepareReport report;
  prepare(&report);
  EXPECT_EQ(report.samples, 1u);
  EXPECT_EQ(report.dropped.at("template_error"), 1u);
}

}  // namespace
