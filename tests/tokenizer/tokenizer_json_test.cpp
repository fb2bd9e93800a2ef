// tokenizer.json on hand-made files small enough that every answer is worked
// out by hand: merges taken from the file (not derived from the vocab),
// token offsets, the added-token flags, byte fallback and unk, the decoder
// steps, which file wins, and a refusal naming the JSON path for every
// component we do not reproduce. Every expected id and offset here was
// checked against the tokenizers library (0.23.3) on the same files; parity
// on real text and real-style files is tests/parity/tokenizer_parity.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "tests/common/expect_error.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ▁=3 a=4 b=5 c=6 ▁a=7 ab=8 bc=9 ▁ab=10, byte pieces for 'é' (C3 A9).
json base_file() {
  return json{
      {"version", "1.0"},
      {"added_tokens",
       json::array({json{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                    json{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                    json{{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", false}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", json::array({json{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                  json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}},
                                  json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", true}, {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab",
         {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"▁", 3}, {"a", 4}, {"b", 5}, {"c", 6}, {"▁a", 7}, {"ab", 8},
          {"bc", 9}, {"▁ab", 10}, {"<0xC3>", 11}, {"<0xA9>", 12}}},
        {"merges", json::array({"a b", "▁ a", json::array({"b", "c"}), "▁a b"})}}}};
}

class TokenizerJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("st_tokenizer_json_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  // A model dir holding `file` as tokenizer.json and a generic-class config.
  std::string write_dir(const std::string& name, const json& file, json config = json::object()) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    if (!config.contains("tokenizer_class")) config["tokenizer_class"] = "PreTrainedTokenizerFast";
    for (const char* t : {"bos_token", "eos_token", "unk_token"})
      if (!config.contains(t)) config[t] = std::string(t) == "bos_token" ? "<s>" : t == std::string("eos_token") ? "</s>" : "<unk>";
    st::write_file_atomic((dir / "tokenizer.json").string(), file.dump());
    st::write_file_atomic((dir / "tokenizer_config.json").string(), config.dump());
    return dir.string();
  }
  fs::path root_;
};

TEST_F(TokenizerJsonTest, MergesComeFromTheFileInItsOrder) {
  st::Tokenizer tok = st::Tokenizer::load(write_dir("ab_first", base_file()));
  // "▁abc": a+b (rank 0) first, then no merge joins ▁ with ab.
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{3, 8, 6}));
  EXPECT_EQ(tok.encode("abc"), (std::vector<int32_t>{1, 3, 8, 6}));
  json reordered = base_file();
  reordered["model"]["merges"] = json::array({"▁ a", "a b", "b c", "▁a b"});
  st::Tokenizer other = st::Tokenizer::load(write_dir("meta_first", reordered));
  // ▁+a first; then b+c (rank 2) beats ▁a+b (rank 3).
  EXPECT_EQ(other.encode("abc", false), (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(other.decode(other.encode("abc")), "<s> abc");  // Strip removes a space only at the very start
  EXPECT_EQ(other.decode(other.encode("abc"), true), "abc");
}

TEST_F(TokenizerJsonTest, TokensKnowTheBytesTheyCover) {
  st::Tokenizer tok = st::Tokenizer::load(write_dir("offsets", base_file()));
  st::Encoding e = tok.encode_with_offsets("abc a", true);
  // <s>, ▁ (prepended, aligned with 'a'), ab, c, ▁a (' a').
  ASSERT_EQ(e.ids, (std::vector<int32_t>{1, 3, 8, 6, 7}));
  const std::vector<std::pair<uint32_t, uint32_t>> spans = {{0, 0}, {0, 1}, {0, 2}, {2, 3}, {3, 5}};
  for (size_t t = 0; t < spans.size(); ++t) {
    EXPECT_EQ(e.spans[t].begin, spans[t].first) << t;
    EXPECT_EQ(e.spans[t].end, spans[t].second) << t;
  }
  // Byte pieces of one character both cover the whole character.
  e = tok.encode_with_offsets("c\xC3\xA9", false);
  ASSERT_EQ(e.ids, (std::vector<int32_t>{3, 6, 11, 12}));
  EXPECT_EQ(e.spans[2].begin, 1u);
  EXPECT_EQ(e.spans[3].begin, 1u);
  EXPECT_EQ(e.spans[3].end, 3u);
  EXPECT_EQ(tok.decode(e.ids), "c\xC3\xA9");
}

TEST_F(TokenizerJsonTest, UnknownCharactersFollowTheModelOptions) {
  json file = base_file();
  // 'x' has no piece and no byte pieces: dropped without an unk token ("▁a" is left)...
  st::Tokenizer dropped = st::Tokenizer::load(write_dir("drop", file));
  EXPECT_EQ(dropped.encode("xxa", false), (std::vector<int32_t>{7}));
  // ... one fused unk with one, or an unk per character without fuse_unk.
  file["model"]["unk_token"] = "<unk>";
  st::Tokenizer fused = st::Tokenizer::load(write_dir("fuse", file));
  EXPECT_EQ(fused.encode("xxa", false), (std::vector<int32_t>{3, 0, 4}));
  file["model"]["fuse_unk"] = false;
  st::Tokenizer separate = st::Tokenizer::load(write_dir("nofuse", file));
  EXPECT_EQ(separate.encode("xxa", false), (std::vector<int32_t>{3, 0, 0, 4}));
  // ignore_merges: a word that is a piece is taken whole.
  file = base_file();
  file["model"]["vocab"]["▁abc"] = 13;
  file["model"]["ignore_merges"] = true;
  st::Tokenizer whole = st::Tokenizer::load(write_dir("ignore", file));
  EXPECT_EQ(whole.encode("abc", false), (std::vector<int32_t>{13}));
}

TEST_F(TokenizerJsonTest, AddedTokenFlags) {
  json file = base_file();
  file["model"]["vocab"]["<x>"] = 13;
  file["added_tokens"].push_back({{"id", 13}, {"content", "<x>"}, {"special", false}, {"normalized", false},
                                  {"lstrip", true}, {"rstrip", true}});
  file["added_tokens"].push_back({{"id", 14}, {"content", "ca"}, {"special", false}, {"normalized", true},
                                  {"single_word", true}});
  st::Tokenizer tok = st::Tokenizer::load(write_dir("flags", file));
  // lstrip and rstrip: the spaces around <x> are part of it.
  st::Encoding e = tok.encode_with_offsets("a  <x>  b", false);
  ASSERT_EQ(e.ids, (std::vector<int32_t>{7, 13, 5}));
  EXPECT_EQ(e.spans[1].begin, 1u);
  EXPECT_EQ(e.spans[1].end, 8u);
  // single_word: "ca" alone is the added token, inside "cab" it is not.
  EXPECT_EQ(tok.encode("a ca", false), (std::vector<int32_t>{7, 3, 14}));
  EXPECT_EQ(tok.encode("cab", false), (std::vector<int32_t>{3, 6, 8}));
  EXPECT_EQ(tok.vocab_size(), 15);
  EXPECT_EQ(tok.id_to_piece(14), "ca");
}

TEST_F(TokenizerJsonTest, NormalizerPrependAndReplaceAsTransformers4SavedThem) {
  json file = base_file();
  file["pre_tokenizer"] = nullptr;
  file["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", json::array({json{{"type", "Prepend"}, {"prepend", "▁"}},
                                                     json{{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                          {"content", "▁"}}})}};
  st::Tokenizer tok = st::Tokenizer::load(write_dir("t4", file));
  // The normalizer runs per stretch between added tokens: "▁" after </s> too.
  EXPECT_EQ(tok.encode("ab</s>ab", false), (std::vector<int32_t>{3, 8, 2, 3, 8}));
  EXPECT_EQ(tok.decode(tok.encode("ab a", false)), "ab a");
}

TEST_F(TokenizerJsonTest, TokenizerJsonWinsOverTokenizerModel) {
  const std::string dir = write_dir("both", base_file());
  st::write_file_atomic(dir + "/tokenizer.model", "not read when tokenizer.json is present");
  st::Tokenizer tok = st::Tokenizer::load(dir);
  EXPECT_EQ(tok.vocab_size(), 13);
  EXPECT_NE(tok.source_file().find("tokenizer.json"), std::string::npos);
}

TEST_F(TokenizerJsonTest, LlamaClassTakesOnlyVocabMergesAndPostProcessor) {
  json file = base_file();
  file["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "b"}};
  json config = {{"tokenizer_class", "LlamaTokenizer"}, {"legacy", true}, {"add_bos_token", false}};
  st::Tokenizer tok = st::Tokenizer::load(write_dir("llama", file, config));
  // The normalizer is ignored, BOS comes from the file's post-processor
  // (add_bos_token in the config is then ignored), legacy prepends after </s>.
  EXPECT_EQ(tok.encode("ab</s>ab"), (std::vector<int32_t>{1, 3, 8, 2, 3, 8}));
}

TEST_F(TokenizerJsonTest, RefusesWhatItDoesNotReproduceNamingThePath) {
  auto refused = [&](const std::string& name, const std::function<void(json&)>& edit,
                     std::initializer_list<std::string> parts) {
    json file = base_file();
    edit(file);
    const std::string dir = write_dir(name, file);
    st::test::expect_error([&] { st::Tokenizer::load(dir); }, parts);
  };
  refused("lowercase", [](json& f) { f["normalizer"] = {{"type", "Lowercase"}}; },
          {"tokenizer.json", "normalizer", "Lowercase"});
  refused("regex",
          [](json& f) {
            f["normalizer"] = {{"type", "Sequence"},
                               {"normalizers", json::array({json{{"type", "Replace"}, {"pattern", {{"Regex", " +"}}},
                                                                 {"content", " "}}})}};
          },
          {"normalizer.normalizers[0].pattern", "String"});
  refused("split",
          [](json& f) {
            f["pre_tokenizer"] = {{"type", "Sequence"},
                                  {"pretokenizers", json::array({f["pre_tokenizer"], json{{"type", "Split"}}})}};
          },
          {"pre_tokenizer.pretokenizers[1]", "Split"});
  refused("bytelevel", [](json& f) { f["decoder"]["decoders"][1] = {{"type", "ByteLevel"}}; },
          {"decoder.decoders[1]", "ByteLevel"});
  refused("dropout", [](json& f) { f["model"]["dropout"] = 0.1; }, {"model.dropout"});
  refused("unigram", [](json& f) { f["model"]["type"] = "Unigram"; }, {"model.type", "Unigram"});
  refused("bert", [](json& f) { f["post_processor"] = {{"type", "BertProcessing"}}; },
          {"post_processor", "BertProcessing"});
  refused("bad_merge", [](json& f) { f["model"]["merges"].push_back("c a"); }, {"merge 4", "\"ca\" is not a piece"});
  refused("gap", [](json& f) { f["model"]["vocab"]["d"] = 20; }, {"model.vocab[\"d\"]", "without gaps"});
  refused("padding", [](json& f) { f["padding"] = {{"strategy", "BatchLongest"}}; }, {"padding"});
  refused("new_id_gap",
          [](json& f) { f["added_tokens"].push_back({{"id", 20}, {"content", "<y>"}, {"special", true}}); },
          {"added_tokens[3]", "<y>", "tokenizers gives it 13"});
  const fs::path empty = root_ / "empty";
  fs::create_directories(empty);
  st::test::expect_error([&] { st::Tokenizer::load(empty.string()); },
                         {empty.string(), "neither tokenizer.json nor tokenizer.model"});
}

}  // namespace
