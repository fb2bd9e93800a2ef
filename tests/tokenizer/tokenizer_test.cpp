// Tests of st::Tokenizer and the Salamandra tokenizer builder on a small
// tokenizer trained here (a second or two). Parity with Hugging Face on real
// text is the job of tokenizer_parity_main + tests/parity/tokenizer_oracle.py;
// these tests pin the layout the builder promises, the behaviours HF has that
// sentencepiece lacks, round trips, and the errors bad tokenizer dirs give.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_builder.h"
#include "tests/common/test_tokenizer.h"

namespace fs = std::filesystem;

namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("st_tokenizer_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    text_path_ = (root_ / "train.txt").string();
    st::write_file_atomic(text_path_, st::test::multilingual_training_text());
    options_.input_files = {text_path_};
    options_.vocab_size = kVocab;
    options_.default_system_prompt = "You are a helpful assistant.";
    st::build_salamandra_tokenizer(options_, dir("model"));
    tok_ = new st::Tokenizer(st::Tokenizer::load(dir("model")));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    fs::remove_all(root_);
  }
  static std::string dir(const std::string& name) { return (root_ / name).string(); }
  // A copy of the built model dir to break in a test.
  static std::string copy_model(const std::string& name) {
    fs::remove_all(root_ / name);
    fs::copy(root_ / "model", root_ / name);
    return dir(name);
  }
  // The st::Error message load() gives for a dir, or "" if it loads.
  static std::string load_error(const std::string& path) {
    try {
      st::Tokenizer::load(path);
    } catch (const st::Error& e) {
      return e.what();
    }
    return "";
  }

  static constexpr int kVocab = 800;
  static inline fs::path root_;
  static inline std::string text_path_;
  static inline st::TokenizerTrainingOptions options_;
  static inline st::Tokenizer* tok_ = nullptr;
};

TEST_F(TokenizerTest, LoadsWithSalamandraSpecialIds) {
  const st::Tokenizer& t = *tok_;
  EXPECT_EQ(t.vocab_size(), kVocab);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), 3);
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 4);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 5);
  EXPECT_EQ(t.id_to_piece(4), "<|im_start|>");
  EXPECT_EQ(t.token_to_id("no such piece"), -1);
  EXPECT_TRUE(t.add_bos_token());
  EXPECT_FALSE(t.add_eos_token());
  for (int id = 0; id <= 5; ++id) EXPECT_TRUE(t.is_special(id)) << id;
  EXPECT_NE(t.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_NE(t.chat_template().find("You are a helpful assistant."), std::string::npos);
  EXPECT_EQ(t.config().at("tokenizer_class"), "LlamaTokenizer");
  EXPECT_EQ(t.config().at("model_max_length"), 8192);
}

TEST_F(TokenizerTest, BuilderLaysOutPiecesAsSpecified) {
  st::SpmModel m = st::parse_spm_model(st::read_file(dir("model") + "/tokenizer.model"), "m");
  ASSERT_EQ(static_cast<int>(m.pieces.size()), kVocab);
  EXPECT_EQ(m.model_type, 2);
  const char* names[] = {"<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"};
  for (int id = 0; id < 6; ++id) EXPECT_EQ(m.pieces[id].piece, names[id]);
  EXPECT_EQ(m.pieces[0].type, st::SpmPieceType::kUnknown);
  EXPECT_EQ(m.pieces[1].type, st::SpmPieceType::kControl);
  EXPECT_EQ(m.pieces[3].type, st::SpmPieceType::kControl);
  // The instruct layout: ChatML markers are user-defined pieces.
  EXPECT_EQ(m.pieces[4].type, st::SpmPieceType::kUserDefined);
  EXPECT_EQ(m.pieces[5].type, st::SpmPieceType::kUserDefined);
  for (int n = 1; n <= 98; ++n) {
    const auto& p = m.pieces[5 + n];
    EXPECT_EQ(p.piece, "<|reserved_token_" + std::to_string(n) + "|>");
    EXPECT_EQ(p.type, st::SpmPieceType::kControl);
    EXPECT_TRUE(tok_->is_special(5 + n));
  }
  auto type_of = [&](const std::string& piece) {
    int32_t id = tok_->token_to_id(piece);
    EXPECT_GE(id, 0) << piece;
    return id < 0 ? st::SpmPieceType::kNormal : m.pieces[id].type;
  };
  EXPECT_EQ(type_of("\r"), st::SpmPieceType::kUserDefined);
  std::string spaces = "\xE2\x96\x81";
  for (int n = 2; n <= 24; ++n) {
    spaces += "\xE2\x96\x81";
    EXPECT_EQ(type_of(spaces), st::SpmPieceType::kUserDefined) << n;
  }
  for (int n = 1; n <= 6; ++n) EXPECT_EQ(type_of(std::string(n, '\t')), st::SpmPieceType::kUserDefined);
  for (int n = 1; n <= 3; ++n) EXPECT_EQ(type_of(std::string(n, '\n')), st::SpmPieceType::kUserDefined);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    EXPECT_EQ(type_of(name), st::SpmPieceType::kByte);
  }
}

TEST_F(TokenizerTest, BuilderIsDeterministic) {
  st::build_salamandra_tokenizer(options_, dir("again"));
  for (const char* file : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_EQ(st::read_file(dir("model") + "/" + file), st::read_file(dir("again") + "/" + file))
        << file;
}

TEST_F(TokenizerTest, ChatMarkersInTextAreSplitOut) {
  const st::Tokenizer& t = *tok_;
  std::vector<int32_t> ids = t.encode("<|im_start|>user\nHola<|im_end|>\n");
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 4);
  EXPECT_EQ(ids[ids.size() - 2], 5);
  EXPECT_EQ(ids.back(), t.token_to_id("\n"));
  // No dummy prefix after a marker (legacy=false), as in sentencepiece.
  EXPECT_FALSE(t.id_to_piece(ids[2]).starts_with("\xE2\x96\x81"));
  std::vector<int32_t> plain = t.encode("<|im_start|>user\nHola<|im_end|>\n", false);
  EXPECT_EQ(plain, std::vector<int32_t>(ids.begin() + 1, ids.end()));
  // HF also splits out <s>, </s> and reserved tokens typed in the text.
  EXPECT_EQ(t.encode("<s></s><|reserved_token_7|>", false), (std::vector<int32_t>{1, 2, 12}));
  EXPECT_EQ(t.decode(ids, true), "user\nHola\n");
  EXPECT_EQ(t.decode(ids), "<s><|im_start|>user\nHola<|im_end|>\n");
}

TEST_F(TokenizerTest, RoundTripsMultilingualTextWithOddWhitespace) {
  const st::Tokenizer& t = *tok_;
  const std::string texts[] = {
      "Hola  món\t\tκόσμος\r\n\n\n\nпривіт     😀 日本語",
      "x\u00a0y\u2028z\u3000w\u200b",
      "tabs\t\t\t\t\t\t\t\tand   spaces                            end ",
      "12345 3.14159 0x1F 2,5%",
      "\r\r\n\n",
      "e\u0301 é A\u030a",
  };
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = t.encode(text);
    EXPECT_EQ(t.decode(ids, true), text);
    // With BOS in front the decoder's strip hits "<", so the dummy prefix shows.
    EXPECT_EQ(t.decode(ids), "<s> " + text);
  }
  // A literal "▁" in the text decodes as a space (HF's Replace decoder).
  EXPECT_EQ(t.decode(t.encode("a\xE2\x96\x81" "b"), true), "a b");
  // HF drops the dummy-prefix space on decode, and with it a real leading one.
  EXPECT_EQ(t.decode(t.encode(" leading"), true), "leading");
  EXPECT_EQ(t.encode(" leading"), t.encode("leading"));
  EXPECT_EQ(t.encode(""), std::vector<int32_t>{1});
  EXPECT_TRUE(t.encode("", false).empty());
}

TEST_F(TokenizerTest, ByteFallbackForCharactersOutsideTheVocab) {
  const st::Tokenizer& t = *tok_;
  std::vector<int32_t> ids = t.encode("\xF0\x9D\x84\x9E", false);  // U+1D11E
  ASSERT_EQ(ids.size(), 5u);  // "▁" + four byte pieces
  EXPECT_EQ(t.id_to_piece(ids[1]), "<0xF0>");
  EXPECT_EQ(t.id_to_piece(ids[4]), "<0x9E>");
  EXPECT_EQ(t.decode(ids), "\xF0\x9D\x84\x9E");
  // A truncated byte run is not UTF-8: one U+FFFD per byte, as HF.
  std::vector<int32_t> cut(ids.begin() + 1, ids.begin() + 3);
  EXPECT_EQ(t.decode(cut), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(TokenizerTest, RejectsBadTextAndIds) {
  EXPECT_THROW(tok_->encode("bad \xC3 utf8"), st::Error);
  std::vector<int32_t> bad = {1, kVocab};
  EXPECT_THROW(tok_->decode(bad), st::Error);
  EXPECT_THROW(tok_->id_to_piece(-1), st::Error);
}

TEST_F(TokenizerTest, BadDirsNameTheFile) {
  std::string missing_model = copy_model("no_model");
  fs::remove(missing_model + "/tokenizer.model");
  std::string error = load_error(missing_model);
  EXPECT_NE(error.find("tokenizer.model"), std::string::npos) << error;

  std::string corrupt = copy_model("corrupt_model");
  st::write_file_atomic(corrupt + "/tokenizer.model", "this is not a protobuf \x01\x02\x03");
  error = load_error(corrupt);
  EXPECT_NE(error.find(corrupt + "/tokenizer.model"), std::string::npos) << error;

  std::string truncated = copy_model("truncated_model");
  std::string bytes = st::read_file(truncated + "/tokenizer.model");
  st::write_file_atomic(truncated + "/tokenizer.model", bytes.substr(0, bytes.size() / 2));
  error = load_error(truncated);
  EXPECT_NE(error.find("tokenizer.model"), std::string::npos) << error;

  std::string malformed = copy_model("malformed_config");
  st::write_file_atomic(malformed + "/tokenizer_config.json", "{\"add_bos_token\": tru");
  error = load_error(malformed);
  EXPECT_NE(error.find(malformed + "/tokenizer_config.json"), std::string::npos) << error;

  std::string no_config = copy_model("no_config");
  fs::remove(no_config + "/tokenizer_config.json");
  EXPECT_NE(load_error(no_config).find("tokenizer_config.json"), std::string::npos);

  auto with_config = [&](const std::string& name, auto edit) {
    std::string d = copy_model(name);
    auto config = nlohmann::json::parse(st::read_file(d + "/tokenizer_config.json"));
    edit(config);
    st::write_file_atomic(d + "/tokenizer_config.json", config.dump());
    return load_error(d);
  };
  error = with_config("wrong_id", [](nlohmann::json& c) {
    c["added_tokens_decoder"]["4"]["content"] = "<|im_end|>";
  });
  EXPECT_NE(error.find("tokenizer_config.json"), std::string::npos) << error;
  EXPECT_NE(error.find("added_tokens_decoder"), std::string::npos) << error;

  error = with_config("new_token", [](nlohmann::json& c) {
    c["added_tokens_decoder"]["900"] = {{"content", "<tool>"}, {"special", true}};
  });
  EXPECT_NE(error.find("added_tokens_decoder.\"900\""), std::string::npos) << error;

  error = with_config("bad_bos", [](nlohmann::json& c) { c["bos_token"] = "<bos>"; });
  EXPECT_NE(error.find("bos_token"), std::string::npos) << error;

  error = with_config("bad_flag", [](nlohmann::json& c) { c["add_bos_token"] = "yes"; });
  EXPECT_NE(error.find("add_bos_token"), std::string::npos) << error;

  error = with_config("bad_class", [](nlohmann::json& c) { c["tokenizer_class"] = "GPT2Tokenizer"; });
  EXPECT_NE(error.find("tokenizer_class"), std::string::npos) << error;

  EXPECT_NE(load_error(dir("does_not_exist")).find("does_not_exist"), std::string::npos);
}

TEST_F(TokenizerTest, BuilderRejectsBadOptions) {
  st::TokenizerTrainingOptions options = options_;
  options.vocab_size = 300;
  EXPECT_THROW(st::build_salamandra_tokenizer(options, dir("too_small")), st::Error);
  options = options_;
  options.input_files = {dir("missing.txt")};
  EXPECT_THROW(st::build_salamandra_tokenizer(options, dir("missing_input")), st::Error);
}

}  // namespace

namespace {

// transformers reads special_tokens_map.json only when tokenizer_config.json
// has no added_tokens_decoder (checked against transformers 5.24).
TEST_F(TokenizerTest, SpecialTokensMapCountsOnlyWithoutAddedTokensDecoder) {
  std::string d = copy_model("map_only_pad");
  auto config = nlohmann::json::parse(st::read_file(d + "/tokenizer_config.json"));
  config.erase("pad_token");
  st::write_file_atomic(d + "/tokenizer_config.json", config.dump());
  EXPECT_EQ(st::Tokenizer::load(d).pad_id(), -1);
  config.erase("added_tokens_decoder");
  st::write_file_atomic(d + "/tokenizer_config.json", config.dump());
  EXPECT_EQ(st::Tokenizer::load(d).pad_id(), tok_->token_to_id("<pad>"));
}

}  // namespace
