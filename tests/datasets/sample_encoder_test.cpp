// SampleEncoder: masks from template segments, the whole-string check,
// BOS handling, truncation, preference pairs. Parity of rendering and masks
// with transformers on the real data sets is tests/parity/data_parity.py;
// these tests pin each rule on small cases where the answer is known.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "datasets/sample_encoder.h"
#include "tests/common/test_tokenizer.h"

namespace fs = std::filesystem;
using st::datasets::Conversation;
using st::datasets::Json;
using st::datasets::SampleEncoder;
using st::datasets::SampleError;
using st::datasets::TrainOn;
using st::datasets::Truncation;

namespace {

class SampleEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("st_sample_encoder_test_" + std::to_string(getpid()));
    st::test::build_test_tokenizer(root_.string());
    tok_ = new st::Tokenizer(st::Tokenizer::load(root_.string()));
  }
  static void TearDownTestSuite() {
    delete tok_;
    fs::remove_all(root_);
  }
  static Conversation chat(std::initializer_list<std::pair<const char*, const char*>> turns) {
    Conversation c;
    for (const auto& [role, content] : turns) c.messages.push_back(Json{{"role", role}, {"content", content}});
    c.origin = "test:1";
    return c;
  }
  static SampleEncoder encoder(st::datasets::EncoderOptions options = {}, const std::string& jinja = "") {
    auto t = jinja.empty() ? st::datasets::ChatTemplate::for_tokenizer(*tok_)
                           : st::datasets::ChatTemplate::from_source(jinja, "test_template", *tok_);
    return SampleEncoder(*tok_, t, options);
  }
  // The text of the trained tokens, run by run.
  static std::vector<std::string> trained_runs(const st::datasets::TokenSequence& seq) {
    std::vector<std::string> runs;
    std::vector<int32_t> run;
    for (size_t t = 0; t <= seq.ids.size(); ++t) {
      if (t < seq.ids.size() && seq.mask[t]) {
        run.push_back(seq.ids[t]);
      } else if (!run.empty()) {
        runs.push_back(tok_->decode(run));
        run.clear();
      }
    }
    return runs;
  }
  static std::string rejection(const std::function<void()>& f) {
    try {
      f();
    } catch (const SampleError& e) {
      return e.reason();
    }
    return "";
  }
  static inline fs::path root_;
  static inline st::Tokenizer* tok_ = nullptr;
};

TEST_F(SampleEncoderTest, BuiltinChatmlRendersLikeTheJinjaChatml) {
  auto c = chat({{"system", "Sé breu."}, {"user", "Hola"}, {"assistant", "Bon dia!"}});
  auto builtin = st::datasets::ChatTemplate::builtin_chatml(*tok_);
  auto jinja = st::datasets::ChatTemplate::for_tokenizer(*tok_);
  ASSERT_NE(jinja.origin(), builtin.origin());
  for (bool gen : {false, true}) EXPECT_EQ(builtin.render(c.messages, nullptr, gen), jinja.render(c.messages, nullptr, gen));
  EXPECT_EQ(builtin.render(c.messages, nullptr, true),
            "<|im_start|>system\nSé breu.<|im_end|>\n<|im_start|>user\nHola<|im_end|>\n"
            "<|im_start|>assistant\nBon dia!<|im_end|>\n<|im_start|>assistant\n");
}

TEST_F(SampleEncoderTest, AssistantRepliesAreTrainedThroughTheirEndToken) {
  auto c = chat({{"system", "Sé breu."}, {"user", "Hola"}, {"assistant", "Bon dia!"}, {"user", "Adéu"},
                 {"assistant", "Fins aviat."}});
  auto seq = encoder().encode(c);
  ASSERT_EQ(seq.ids.size(), seq.mask.size());
  EXPECT_EQ(seq.ids[0], tok_->bos_id());
  EXPECT_EQ(seq.mask[0], 0);
  EXPECT_EQ(std::count(seq.ids.begin(), seq.ids.end(), tok_->bos_id()), 1);
  EXPECT_EQ(trained_runs(seq), (std::vector<std::string>{"Bon dia!<|im_end|>", "Fins aviat.<|im_end|>"}));
  // The ids are those of the whole rendered string.
  std::string text = encoder().chat_template().render(c.messages, nullptr, false);
  EXPECT_EQ(seq.ids, tok_->encode(text, true));
}

TEST_F(SampleEncoderTest, TrainOnAllAndLastAssistant) {
  auto c = chat({{"user", "Hola"}, {"assistant", "Bon dia!"}, {"user", "Adéu"}, {"assistant", "Fins aviat."}});
  auto last = encoder({.train_on = TrainOn::kLastAssistant}).encode(c);
  EXPECT_EQ(trained_runs(last), (std::vector<std::string>{"Fins aviat.<|im_end|>"}));
  auto all = encoder({.train_on = TrainOn::kAll}).encode(c);
  EXPECT_EQ(all.trained(), all.ids.size() - 1);  // everything but BOS
}

TEST_F(SampleEncoderTest, TemplateTextOutsideMessagesIsNotTrained) {
  // Like Salamandra's first template: a fixed assistant introduction turn.
  const std::string jinja =
      "{{ '<|im_start|>assistant\\nI am a model.<|im_end|>\\n' }}{% for m in messages %}"
      "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  auto seq = encoder({}, jinja).encode(chat({{"user", "Hola"}, {"assistant", "Bon dia!"}}));
  EXPECT_EQ(trained_runs(seq), (std::vector<std::string>{"Bon dia!<|im_end|>"}));
}

TEST_F(SampleEncoderTest, NothingToTrainIsRejected) {
  EXPECT_EQ(rejection([&] { encoder().encode(chat({{"system", "x"}, {"user", "Hola"}})); }), "nothing_to_train");
}

TEST_F(SampleEncoderTest, TemplatesThatAreNotIncrementalAreRejected) {
  // Renders the messages last-first: a prefix is not a prefix of the whole.
  const std::string reversed =
      "{% for m in messages|reverse %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
      "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";
  EXPECT_EQ(rejection([&] { encoder({}, reversed).encode(chat({{"user", "Hola"}, {"assistant", "Bon dia"}})); }),
            "template_not_incremental");
}

TEST_F(SampleEncoderTest, OnlyTokensAcrossTrainedAndUntrainedTextAreRefused) {
  // No separator between turns: the user's text runs straight into the
  // reply, so some syllable pairs share a token across the cut. Those alone
  // are refused; every other pair is the whole text tokenized once, its mask
  // starting exactly where the reply does. Whether a token crosses the cut is
  // decided from decode(), independently of the encoder's offsets: the cut is
  // clean when some prefix of the tokens decodes to the user's text.
  const std::string glued = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
  const char* syllables[] = {"ka", "ri", "mo", "ta", "len", "sa", "tu", "ne", "ci", "do", "ver", "ma"};
  int straddling = 0, clean = 0;
  for (const char* a : syllables)
    for (const char* b : syllables) {
      const auto whole = tok_->encode(std::string(a) + b, true);
      size_t cut = 0;
      for (size_t k = 1; k <= whole.size(); ++k)
        if (tok_->decode(std::span(whole).first(k), true) == a) cut = k;
      const std::string reason = rejection([&] { encoder({}, glued).encode(chat({{"user", a}, {"assistant", b}})); });
      if (cut == 0) {
        ++straddling;
        EXPECT_EQ(reason, "token_straddles_boundary") << a << "|" << b;
        continue;
      }
      ++clean;
      ASSERT_EQ(reason, "") << a << "|" << b;
      auto seq = encoder({}, glued).encode(chat({{"user", a}, {"assistant", b}}));
      EXPECT_EQ(seq.ids, whole) << a << "|" << b;
      for (size_t t = 0; t < seq.ids.size(); ++t) EXPECT_EQ(seq.mask[t], t >= cut ? 1 : 0) << a << "|" << b << " " << t;
    }
  EXPECT_GT(straddling, 0) << "no syllable pair shares a token; the test proves nothing";
  EXPECT_GT(clean, 0);
}

TEST_F(SampleEncoderTest, ExactlyOneBos) {
  EXPECT_EQ(rejection([&] { encoder().encode(chat({{"user", "a <s> b"}, {"assistant", "ok"}})); }), "extra_bos");
  // A template that writes BOS itself gets no second one.
  const std::string with_bos =
      "{{ bos_token }}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
      "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  auto seq = encoder({}, with_bos).encode(chat({{"user", "Hola"}, {"assistant", "Bon dia!"}}));
  EXPECT_EQ(seq.ids[0], tok_->bos_id());
  EXPECT_NE(seq.ids[1], tok_->bos_id());
  EXPECT_EQ(std::count(seq.ids.begin(), seq.ids.end(), tok_->bos_id()), 1);
}

TEST_F(SampleEncoderTest, Truncation) {
  auto c = chat({{"user", "Hola, què tal? Com va tot per aquí?"}, {"assistant", "Molt bé, gràcies per preguntar!"}});
  const auto full = encoder().encode(c);
  const int64_t limit = static_cast<int64_t>(full.ids.size()) - 5;
  EXPECT_EQ(rejection([&] { encoder({.max_length = limit, .truncation = Truncation::kDrop}).encode(c); }), "too_long");
  bool truncated = false;
  auto right = encoder({.max_length = limit, .truncation = Truncation::kRight}).encode(c, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(right.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + limit));
  auto left = encoder({.max_length = limit, .truncation = Truncation::kLeft}).encode(c, &truncated);
  EXPECT_TRUE(truncated);
  ASSERT_EQ(left.ids.size(), static_cast<size_t>(limit));
  EXPECT_EQ(left.ids[0], tok_->bos_id());
  EXPECT_EQ(std::vector<int32_t>(left.ids.begin() + 1, left.ids.end()),
            std::vector<int32_t>(full.ids.end() - (limit - 1), full.ids.end()));
  EXPECT_EQ(left.trained(), full.trained());
  // Fits exactly: untouched.
  auto exact = encoder({.max_length = static_cast<int64_t>(full.ids.size())}).encode(c, &truncated);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(exact.ids, full.ids);
  // Cutting the end through all of the reply leaves nothing to train.
  EXPECT_EQ(rejection([&] { encoder({.max_length = 8, .truncation = Truncation::kRight}).encode(c); }),
            "nothing_to_train_after_truncation");
}

TEST_F(SampleEncoderTest, PreferencePairSharesThePromptAndTrainsCompletionsOnly) {
  st::datasets::PreferencePair pair;
  pair.prompt = chat({{"system", "Sé breu."}, {"user", "Quin dia és avui?"}}).messages;
  pair.chosen = Json::array({Json{{"role", "assistant"}, {"content", "Dilluns."}}});
  pair.rejected = Json::array({Json{{"role", "assistant"}, {"content", "No ho sé pas, potser dimarts."}}});
  pair.origin = "test:2";
  auto enc = encoder();
  auto tokens = enc.encode_pair(pair);
  const std::string prompt = enc.chat_template().render(pair.prompt, nullptr, true);
  EXPECT_EQ(tokens.prompt, tok_->encode(prompt, true));
  for (auto [answer, seq] : {std::pair{pair.chosen, tokens.chosen}, std::pair{pair.rejected, tokens.rejected}}) {
    Json all = pair.prompt;
    all.push_back(answer[0]);
    std::vector<int32_t> joined = tokens.prompt;
    joined.insert(joined.end(), seq.ids.begin(), seq.ids.end());
    EXPECT_EQ(joined, tok_->encode(enc.chat_template().render(all, nullptr, false), true));
    EXPECT_EQ(trained_runs(seq), (std::vector<std::string>{answer[0]["content"].get<std::string>() + "<|im_end|>"}));
  }
  // Too long: the prompt is cut from the left (BOS kept), completions stay whole.
  const size_t longest = std::max(tokens.chosen.ids.size(), tokens.rejected.ids.size());
  const int64_t limit = static_cast<int64_t>(tokens.prompt.size() + longest - 3);
  auto cut = encoder({.max_length = limit, .truncation = Truncation::kLeft}).encode_pair(pair);
  EXPECT_EQ(cut.prompt.size(), tokens.prompt.size() - 3);
  EXPECT_EQ(cut.prompt[0], tok_->bos_id());
  EXPECT_EQ(cut.chosen.ids, tokens.chosen.ids);
  EXPECT_EQ(cut.rejected.ids, tokens.rejected.ids);
  // Pairs that cannot train are refused with a reason prepare counts: a
  // chosen equal to its rejected, a prompt that leaves the completions no
  // room (an empty completion is the readers' to count: readers_test).
  st::datasets::PreferencePair same = pair;
  same.rejected = same.chosen;
  EXPECT_EQ(rejection([&] { enc.encode_pair(same); }), "chosen_equals_rejected");
  const int64_t prompt_only = static_cast<int64_t>(tokens.prompt.size());
  EXPECT_EQ(rejection([&] {
              encoder({.max_length = prompt_only, .truncation = Truncation::kRight}).encode_pair(pair);
            }),
            "nothing_to_train_after_truncation");
}

}  // namespace
