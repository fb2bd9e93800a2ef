// Each training option is defined once, in the schema: a recipe that sets
// nothing gets the schema's defaults in RunConfig, and the digests follow
// the keys' KeySpec::affects flags (results vs. where files go).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include "model/lm_head.h"
#include "datasets/data_config.h"
#include "train/run_config.h"

namespace st {
namespace {

namespace fs = std::filesystem;

// What a training recipe without recipe-specific keys may hold.
RecipeSchema run_schema() { return merge_schemas({datasets::data_schema(), train::training_schema()}); }

class RunConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("st_run_config_test_" + std::to_string(getpid()));
    fs::create_directories(dir_ / "model");
    std::ofstream(dir_ / "train.jsonl") << "{}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  Recipe load(const std::vector<std::string>& overrides = {}) const {
    return Recipe::from_string("[model]\npath = \"model\"\n[data]\ntrain = [\"train.jsonl\"]\n"
                               "[training]\noutput_dir = \"run\"\n",
                               "recipe.toml", dir_.string(),
                               run_schema(), overrides);
  }
  fs::path dir_;
};

// The schema's declared default of `key`, as a T.
template <typename T>
T schema_default(const std::string& key) {
  for (const KeySpec& spec : run_schema())
    if (spec.key == key) return std::get<T>(*spec.default_value);
  ADD_FAILURE() << key << " is not a data or training key";
  return T{};
}

TEST_F(RunConfigTest, DefaultsComeFromTheSchema) {
  const train::RunConfig c = train::run_config(load());
  EXPECT_EQ(c.dtype, schema_default<std::string>("model.dtype"));
  EXPECT_EQ(c.lm_head_chunk, schema_default<int64_t>("training.lm_head_chunk"));
  EXPECT_EQ(c.lm_head_chunk, kDefaultLmHeadChunk);  // the one constant score uses too
  EXPECT_EQ(c.micro_batch_rows, schema_default<int64_t>("training.micro_batch_rows"));
  EXPECT_EQ(c.optimizer.lr, schema_default<double>("optimizer.lr"));
  EXPECT_EQ(c.master_weights, schema_default<bool>("optimizer.master_weights"));
  EXPECT_EQ(c.keep_last, schema_default<int64_t>("checkpointing.keep_last"));
  EXPECT_EQ(c.data.packing, schema_default<bool>("data.packing"));
  EXPECT_EQ(c.data.seed, static_cast<uint64_t>(schema_default<int64_t>("data.seed")));
  EXPECT_EQ(c.data.bucket_window, static_cast<uint32_t>(schema_default<int64_t>("data.bucket_window")));
}

TEST_F(RunConfigTest, ResultsDigestTakesWhatDecidesTheNumbersOnly) {
  const std::string base = load().canonical(KeyEffect::kResults);
  for (const char* changed : {"optimizer.lr=0.5", "training.lm_head_chunk=7", "model.dtype=\"float32\"",
                              "data.max_length=99", "schedule.kind=\"linear\"", "training.grad_accumulation=3"})
    EXPECT_NE(load({changed}).canonical(KeyEffect::kResults), base) << changed;
  for (const char* same : {"training.output_dir=\"elsewhere\"", "training.threads=3", "logging.every_steps=2",
                           "checkpointing.keep_last=5", "data.workers=2", "data.cache_dir=\"c\""})
    EXPECT_EQ(load({same}).canonical(KeyEffect::kResults), base) << same;
  // The token cache's key moves with the tokens only.
  const std::string cache = load().canonical(KeyEffect::kCache);
  EXPECT_NE(load({"data.max_length=99"}).canonical(KeyEffect::kCache), cache);
  EXPECT_EQ(load({"optimizer.lr=0.5"}).canonical(KeyEffect::kCache), cache);
  EXPECT_EQ(load({"data.packing=false"}).canonical(KeyEffect::kCache), cache);
}

}  // namespace
}  // namespace st
