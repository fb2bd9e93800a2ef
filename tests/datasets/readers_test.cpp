// Data readers: each format on small inline samples, every bad-input message
// (file, line, key), skip-and-count, format detection, gzip, and the real
// sample sets of shared/data (ST_SHARED_DATA), whose counts were taken with
// independent Python one-liners (json / gzip modules).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>

#include "common/error.h"
#include "datasets/readers.h"
#include "tests/common/expect_error.h"

namespace st::datasets {
namespace {

namespace fs = std::filesystem;

ReaderOptions opts(DataFormat format = DataFormat::kAuto, bool skip = false) {
  ReaderOptions o;
  o.format = format;
  o.skip_invalid = skip;
  return o;
}

std::vector<Conversation> chat(const std::string& text, ReaderOptions o = opts(), ReadStats* stats = nullptr) {
  return parse_conversations(text, "data.jsonl", o, stats);
}
std::vector<PreferencePair> prefs(const std::string& text, ReaderOptions o = opts(), ReadStats* stats = nullptr) {
  return parse_preferences(text, "data.jsonl", o, stats);
}

using test::expect_error;

std::string gzip_bytes(const std::string& text) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, text.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// ---- names ----------------------------------------------------------------

TEST(DataFormat, NamesRoundTripAndUnknownListsValid) {
  for (auto f : {DataFormat::kAuto, DataFormat::kMessages, DataFormat::kShareGpt, DataFormat::kAlpaca,
                 DataFormat::kPromptCompletion, DataFormat::kPreference, DataFormat::kPreferenceTranscripts,
                 DataFormat::kLlamaFactoryRanking, DataFormat::kOpenAiPreference})
    EXPECT_EQ(parse_data_format(data_format_name(f)), f);
  expect_error([] { parse_data_format("chatml"); }, {"'chatml'", "sharegpt", "openai_preference"});
  EXPECT_EQ(sample_kind(DataFormat::kAlpaca), SampleKind::kChat);
  EXPECT_EQ(sample_kind(DataFormat::kLlamaFactoryRanking), SampleKind::kPreference);
}

// ---- chat formats ---------------------------------------------------------

TEST(Messages, KeepsExtraKeysOrderAndTools) {
  ReadStats stats;
  auto out = chat(
      R"({"messages": [{"role": "system", "content": "S"}, {"content": "Q", "role": "user", "name": "ann"},)"
      R"( {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},)"
      R"( {"role": "tool", "tool_call_id": "c1", "content": "42"}, {"role": "assistant", "content": "It is 42."}],)"
      R"( "tools": [{"type": "function", "function": {"name": "f"}}]})"
      "\n\n",
      opts(), &stats);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stats.format, DataFormat::kMessages);
  EXPECT_EQ(stats.records, 1u);
  EXPECT_EQ(stats.accepted, 1u);
  const Json& m = out[0].messages;
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[1].dump(), R"({"content":"Q","role":"user","name":"ann"})");
  EXPECT_FALSE(m[2].contains("content"));
  EXPECT_EQ(m[3]["tool_call_id"], "c1");
  ASSERT_TRUE(out[0].tools.is_array());
  EXPECT_EQ(out[0].tools[0]["function"]["name"], "f");
  EXPECT_EQ(out[0].origin, "data.jsonl:1");
}

TEST(Messages, NoToolsIsNullAndFieldMappingRenames) {
  ReaderOptions o = opts(DataFormat::kMessages);
  o.fields.messages = "dialog";
  o.fields.role = "speaker";
  o.fields.content = "text";
  o.fields.role_aliases = {{"bot", "assistant"}};
  auto out = chat(R"({"dialog": [{"speaker": "user", "text": "hi"}, {"speaker": "bot", "text": "hello"}]})", o);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].tools.is_null());
  EXPECT_EQ(out[0].messages[1].dump(), R"({"role":"assistant","content":"hello"})");
}

TEST(ShareGpt, RolesSystemFieldAndLlamaFactoryToolTurns) {
  auto out = chat(
      R"({"system": "Be brief.", "tools": "[{\"name\": \"calc\"}]", "conversations": [)"
      R"({"from": "human", "value": "2+2?"}, {"from": "function_call", "value": "{\"name\": \"calc\", \"arguments\": {\"x\": \"2+2\"}}"},)"
      R"({"from": "observation", "value": "4"}, {"from": "gpt", "value": "4."}, {"from": "user", "value": "thanks"}, {"from": "assistant", "value": "np"}]})");
  ASSERT_EQ(out.size(), 1u);
  const Json& m = out[0].messages;
  ASSERT_EQ(m.size(), 7u);
  EXPECT_EQ(m[0].dump(), R"({"role":"system","content":"Be brief."})");
  EXPECT_EQ(m[1].dump(), R"({"role":"user","content":"2+2?"})");
  EXPECT_EQ(m[2].dump(),
            R"({"role":"assistant","tool_calls":[{"type":"function","function":{"name":"calc","arguments":{"x":"2+2"}}}]})");
  EXPECT_EQ(m[3]["role"], "tool");
  EXPECT_EQ(m[6]["role"], "assistant");
  EXPECT_EQ(out[0].tools[0]["name"], "calc");
}

TEST(Alpaca, InputJoinedWithBlankLineResponseSystemHistory) {
  auto out = chat(
      R"({"instruction": "Translate.", "input": "Hola", "output": "Hello"})"
      "\n"
      R"({"instruction": "Say hi.", "input": "", "output": "hi"})"
      "\n"
      R"({"instruction": "Q2", "response": "A2", "system": "S", "history": [["Q1", "A1"]]})");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].messages.dump(),
            R"([{"role":"user","content":"Translate.\n\nHola"},{"role":"assistant","content":"Hello"}])");
  EXPECT_EQ(out[1].messages[0]["content"], "Say hi.");
  EXPECT_EQ(out[2].messages.dump(),
            R"([{"role":"system","content":"S"},{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"},)"
            R"({"role":"user","content":"Q2"},{"role":"assistant","content":"A2"}])");
}

TEST(PromptCompletion, StringsAndMessageLists) {
  auto out = chat(R"({"prompt": "The sky is", "completion": " blue."})"
                  "\n"
                  R"({"prompt": [{"role": "user", "content": "Sky?"}], "completion": [{"role": "assistant", "content": "Blue."}]})");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].messages.dump(), R"([{"role":"user","content":"The sky is"},{"role":"assistant","content":" blue."}])");
  EXPECT_EQ(out[1].messages.size(), 2u);
}

// ---- preference formats ---------------------------------------------------

TEST(Preference, ExplicitStringsAndLists) {
  ReadStats stats;
  auto out = prefs(R"({"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."})"
                   "\n"
                   R"({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Sky?"}],)"
                   R"( "chosen": [{"role": "assistant", "content": "Blue."}], "rejected": [{"role": "assistant", "content": "Green."}]})",
                   opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kPreference);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].prompt.dump(), R"([{"role":"user","content":"Sky?"}])");
  EXPECT_EQ(out[0].chosen.dump(), R"([{"role":"assistant","content":"Blue."}])");
  EXPECT_EQ(out[0].rejected[0]["content"], "Green.");
  EXPECT_EQ(out[1].prompt.size(), 2u);
}

TEST(Preference, EmptyCompletionIsCountedNotFatal) {
  // A pair with nothing to prefer cannot train: dropped and counted even
  // without skip_invalid (datasets/sample_error.h: is_expected_drop).
  ReadStats stats;
  auto out = prefs(R"({"prompt": [{"role": "user", "content": "Sky?"}], "chosen": [], "rejected": "Green."})"
                   "\n"
                   R"({"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."})",
                   opts(), &stats);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stats.skipped, (std::map<std::string, size_t>{{"empty_completion", 1}}));
}

TEST(Preference, ImplicitPromptIsLongestSharedPrefixIgnoringKeyOrder) {
  auto out = prefs(
      R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "good"}],)"
      R"( "rejected": [{"content": "Q", "role": "user"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "bad"}]})");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].prompt.size(), 3u);
  EXPECT_EQ(out[0].chosen.dump(), R"([{"role":"assistant","content":"good"}])");
  EXPECT_EQ(out[0].rejected.dump(), R"([{"role":"assistant","content":"bad"}])");
}

TEST(Transcripts, SplitAsTrlHhRlhfScript) {
  ReadStats stats;
  auto out = prefs(
      R"({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nAssistant: again\n\nHuman: Joke?\n\nAssistant: Sure: ...", )"
      R"("rejected": "\n\nHuman: Hi\n\nAssistant: Hello\n\nAssistant: again\n\nHuman: Joke?\n\nAssistant: No."})"
      "\n"
      R"({"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"})",
      opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kPreferenceTranscripts);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].prompt.dump(),
            R"([{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello\n\nagain"},{"role":"user","content":"Joke?"}])");
  EXPECT_EQ(out[0].chosen.dump(), R"([{"role":"assistant","content":"Sure: ..."}])");
  EXPECT_EQ(out[0].rejected.dump(), R"([{"role":"assistant","content":"No."}])");
  // An empty preferred reply is a real preference (hh-rlhf has four).
  EXPECT_EQ(out[1].chosen[0]["content"], "");
  expect_error([] { prefs(R"({"chosen": "Hi there", "rejected": "Hi you"})"); },
               {"data.jsonl:1", "key 'chosen'", "Assistant"});
}

TEST(LlamaFactoryRanking, ConversationsPromptSystemAndTurns) {
  ReadStats stats;
  auto out = prefs(R"([{"system": "S", "conversations": [{"from": "human", "value": "Q"}],)"
                   R"( "chosen": {"from": "gpt", "value": "good"}, "rejected": {"from": "gpt", "value": "bad"}}])",
                   opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kLlamaFactoryRanking);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].prompt.dump(), R"([{"role":"system","content":"S"},{"role":"user","content":"Q"}])");
  EXPECT_EQ(out[0].chosen.dump(), R"([{"role":"assistant","content":"good"}])");
  EXPECT_EQ(out[0].origin, "data.jsonl: record 0 (line 1)");
}

TEST(OpenAiPreference, InputMessagesToolsAndOutputs) {
  ReadStats stats;
  auto out = prefs(R"({"input": {"messages": [{"role": "user", "content": "Q"}], "tools": [{"type": "function"}]},)"
                   R"( "preferred_output": [{"role": "assistant", "content": "good"}], "non_preferred_output": [{"role": "assistant", "content": "bad"}]})",
                   opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kOpenAiPreference);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].prompt.size(), 1u);
  EXPECT_EQ(out[0].rejected[0]["content"], "bad");
  EXPECT_TRUE(out[0].tools.is_array());
}

// ---- detection ------------------------------------------------------------

TEST(Detection, AmbiguousUnknownMtBenchAndKindMismatch) {
  expect_error([] { chat(R"({"messages": [], "instruction": "x", "output": "y"})"); },
               {"data.jsonl:1", "'messages', 'instruction', 'output'", "messages, alpaca", "`format`"});
  expect_error([] { chat(R"({"text": "x"})"); }, {"data.jsonl:1", "'text'", "`format`"});
  expect_error([] { chat(R"({"question_id": 81, "category": "writing", "turns": ["a", "b"]})"); },
               {"MT-bench", "no assistant replies"});
  expect_error([] { chat(R"({"prompt": "p", "chosen": "a", "rejected": "b"})"); },
               {"'preference'", "chat conversations are needed"});
  expect_error([] { prefs("{}", opts(DataFormat::kAlpaca)); }, {"'alpaca'", "preference pairs are needed"});
  // The first record decides; a later record of another shape is a bad sample.
  expect_error([] { chat("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n{\"instruction\": \"x\", \"output\": \"y\"}"); },
               {"data.jsonl:2", "key 'messages'", "missing", "format 'messages'"});
}

// ---- bad input ------------------------------------------------------------

TEST(BadInput, MessagesNameFileLineAndKey) {
  auto msg = [](const std::string& messages) { return R"({"x": 1, "messages": )" + messages + "}"; };
  expect_error([&] { chat("\n\n{\"messages\": [}"); }, {"data.jsonl:3", "malformed JSON"});
  expect_error([&] { chat("{\"messages\": 1E400}"); }, {"data.jsonl:1", "malformed JSON", "number overflow"});
  expect_error([&] { chat("[1, 2]"); }, {"data.jsonl: record 0 (line 1)", "JSON object"});
  expect_error([&] { chat(msg(R"("hi")")); }, {"data.jsonl:1", "key 'messages'", "array"});
  expect_error([&] { chat(msg(R"([{"role": "user"}])")); }, {"key 'messages[0].content'", "missing"});
  expect_error([&] { chat(msg(R"([{"content": "q"}])")); }, {"key 'messages[0].role'", "missing"});
  expect_error([&] { chat(msg(R"([{"role": "bot", "content": "q"}])")); },
               {"key 'messages[0].role'", "unknown role 'bot'"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": 5}])")); }, {"messages[0].content", "string"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}])")); },
               {"key 'messages[1].content'", "empty assistant message"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": "q"}, {"role": "user", "content": "q"}])")); },
               {"key 'messages[1].role'", "cannot follow a user"});
  expect_error([&] { chat(msg(R"([{"role": "assistant", "content": "a"}])")); },
               {"messages[0].role", "start with a user"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": "q"}, {"role": "system", "content": "s"}])")); },
               {"messages[1].role", "only come first"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}])")); },
               {"messages[2].role", "tool message"});
  expect_error([&] { chat(msg(R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": []}])")); },
               {"messages[1].tool_calls", "non-empty"});
  expect_error([&] { chat(R"({"conversations": [{"from": "human", "value": ""}]})"); },
               {"key 'conversations[0].value'", "empty user message"});
  expect_error([&] { chat(R"({"conversations": [{"from": "alien", "value": "x"}]})"); },
               {"key 'conversations[0].from'", "unknown role 'alien'"});
  expect_error([&] { chat(R"({"instruction": "", "output": "y"})"); }, {"key 'instruction'", "empty"});
  expect_error([&] { chat(R"({"instruction": "x"})"); }, {"key 'output'", "missing"});
  expect_error([&] { chat(R"({"messages": [{"role": "user", "content": "q"}], "tools": 3})"); },
               {"key 'tools'", "array"});
  // An empty completion is no error: a pair that cannot train, dropped and
  // counted (Preference.EmptyCompletionIsCountedNotFatal).
  ReadStats stats;
  EXPECT_TRUE(prefs(R"({"input": {"messages": [{"role": "user", "content": "q"}]}, "preferred_output": [], "non_preferred_output": [{"role": "assistant", "content": "b"}]})",
                    opts(), &stats)
                  .empty());
  EXPECT_EQ(stats.skipped, (std::map<std::string, size_t>{{"empty_completion", 1}}));
  expect_error([&] { prefs(R"({"chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "user", "content": "b"}]})"); },
               {"key 'chosen'", "share no leading"});
}

TEST(BadInput, JsonArrayLinesAndRecordIndex) {
  std::string text = "[\n  {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}]},\n"
                     "  {\"conversations\": [{\"from\": \"human\",\n \"value\": \"\"}]}\n]";
  expect_error([&] { chat(text); }, {"data.jsonl: record 1 (line 3)", "conversations[0].value"});
  // Syntax errors inside an array: the line of the bad byte; never skippable.
  std::string broken = "[\n{\"messages\": []},\n{\"messages\":\n [}\n]";
  expect_error([&] { chat(broken, opts(DataFormat::kAuto, true)); }, {"data.jsonl:4", "malformed JSON in record 1"});
  expect_error([&] { chat("[{\"messages\": []},]", opts(DataFormat::kAuto, true)); }, {"stray ','"});
  expect_error([&] { chat("[{\"messages\": []}", opts(DataFormat::kAuto, true)); }, {"not closed"});
  expect_error([&] { chat("[{\"messages\": []}] x", opts(DataFormat::kAuto, true)); }, {"after the end"});
  expect_error([&] { chat(""); }, {"no records"});
}

TEST(BadInput, InvalidUtf8NamesFileAndLine) {
  std::string text = "{\"messages\": [{\"role\": \"user\", \"content\": \"ok\"}]}\n"
                     "{\"messages\": [{\"role\": \"user\", \"content\": \"bad \xC3\x28\"}]}\n";
  expect_error([&] { chat(text); }, {"data.jsonl:2", "invalid UTF-8"});
  std::string array = "[\n{\"messages\": [{\"role\": \"user\",\n \"content\": \"\xED\xA0\x80\"}]}]";
  expect_error([&] { chat(array); }, {"record 0 (line 2)", "invalid UTF-8 at line 3"});
}

TEST(BadInput, SkipInvalidCountsReasons) {
  std::string text =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n"
      "{\"messages\": [\n"
      "{\"messages\": [{\"role\": \"bot\", \"content\": \"q\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"\xFF\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"user\", \"content\": \"q\"}]}\n"
      "[1]\n";
  ReadStats stats;
  auto out = chat(text, opts(DataFormat::kAuto, true), &stats);
  EXPECT_EQ(out.size(), 2u);  // the last complete one has no reply: not an error here
  EXPECT_EQ(stats.records, 8u);
  EXPECT_EQ(stats.accepted, 2u);
  std::map<std::string, size_t> want{{"malformed JSON", 1}, {"unknown role", 1}, {"empty content", 1},
                                     {"invalid UTF-8", 1}, {"bad turn order", 1}, {"wrong type", 1}};
  EXPECT_EQ(stats.skipped, want);
}

TEST(Gzip, MemoryAndFileByMagicNotName) {
  std::string text = "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n";
  ReadStats stats;
  auto out = parse_preferences(gzip_bytes(text) + gzip_bytes(text), "x.jsonl", opts(), &stats);
  EXPECT_EQ(out.size(), 2u);  // concatenated gzip members, as gzip(1) reads them
  fs::path path = fs::temp_directory_path() / ("st_readers_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream f(path, std::ios::binary);
    f << gzip_bytes("[" + std::string(R"({"instruction": "x", "output": "y"})") + "]");
  }
  auto chats = read_conversations(path.string(), opts(), &stats);
  EXPECT_EQ(chats.size(), 1u);
  EXPECT_EQ(stats.format, DataFormat::kAlpaca);
  EXPECT_EQ(chats[0].origin, path.string() + ": record 0 (line 1)");
  fs::remove(path);
  std::string truncated = gzip_bytes(text);
  truncated.resize(truncated.size() - 6);
  expect_error([&] { prefs(truncated); }, {"truncated"});
  expect_error([] { read_conversations("/nonexistent/data.jsonl", opts()); }, {"/nonexistent/data.jsonl"});
}

// ---- the real sample sets -------------------------------------------------

fs::path shared_data() {
  const char* env = std::getenv("ST_SHARED_DATA");
  return env ? fs::path(env) : fs::path();
}

#define REQUIRE_SHARED_DATA(dir)                                                    \
  fs::path dir = shared_data();                                                     \
  if (dir.empty() || !fs::exists(dir / "fastchat")) GTEST_SKIP() << "no ST_SHARED_DATA"

size_t total_messages(const std::vector<Conversation>& v) {
  size_t n = 0;
  for (const auto& c : v) n += c.messages.size();
  return n;
}

TEST(RealData, ChatSets) {
  REQUIRE_SHARED_DATA(root);
  ReadStats stats;
  auto fc = read_conversations((root / "fastchat/dummy_conversation.json").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kShareGpt);
  EXPECT_EQ(fc.size(), 500u);
  EXPECT_EQ(total_messages(fc), 2000u);

  auto train = read_conversations((root / "gsm8k_chat/chat_train.jsonl").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kMessages);
  EXPECT_EQ(train.size(), 449u);
  EXPECT_EQ(total_messages(train), 449u * 3);
  EXPECT_EQ(read_conversations((root / "gsm8k_chat/chat_validation.jsonl").string(), opts()).size(), 50u);

  auto tools = read_conversations((root / "toolcall_chat/stock_toolcall_training.jsonl").string(), opts());
  ASSERT_EQ(tools.size(), 86u);
  size_t with_calls = 0;
  for (const auto& c : tools) {
    with_calls += c.messages[2].contains("tool_calls");
    EXPECT_EQ(c.tools.size(), 2u);
  }
  EXPECT_EQ(with_calls, 36u);
  EXPECT_EQ(read_conversations((root / "toolcall_chat/stock_toolcall_validation.jsonl").string(), opts()).size(), 10u);

  auto tiny = read_conversations((root / "torchtune_tiny/chat_tiny.json").string(), opts());
  ASSERT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny[0].messages.size(), 5u);
  auto instruct = read_conversations((root / "torchtune_tiny/instruct_tiny.json").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kAlpaca);
  ASSERT_EQ(instruct.size(), 2u);
  EXPECT_EQ(instruct[0].messages[1]["content"], "It is 10:00 AM in London");
}

TEST(RealData, PreferenceSets) {
  REQUIRE_SHARED_DATA(root);
  ReadStats stats;
  auto hh = read_preferences((root / "hh_rlhf/harmless-base/test.jsonl.gz").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kPreferenceTranscripts);
  ASSERT_EQ(hh.size(), 2312u);
  size_t prompt_messages = 0, empty_chosen = 0;
  for (const auto& p : hh) {
    prompt_messages += p.prompt.size();
    empty_chosen += p.chosen[0]["content"] == "";
  }
  // 9204 turns by TRL's split, less 4 same-speaker pairs merged.
  EXPECT_EQ(prompt_messages, 9200u);
  EXPECT_EQ(empty_chosen, 4u);

  auto orca = read_preferences((root / "orca_dpo_pairs/validation.jsonl").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kOpenAiPreference);
  ASSERT_EQ(orca.size(), 284u);
  for (const auto& p : orca) EXPECT_EQ(p.prompt.size(), 2u);

  auto lf = read_preferences((root / "llamafactory/dpo_en_demo.json").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kLlamaFactoryRanking);
  ASSERT_EQ(lf.size(), 300u);
  size_t lf_prompt = 0, lf_system = 0;
  for (const auto& p : lf) {
    lf_prompt += p.prompt.size();
    lf_system += p.prompt[0]["role"] == "system";
  }
  EXPECT_EQ(lf_prompt, 906u);
  EXPECT_EQ(lf_system, 80u);

  auto tiny = read_preferences((root / "torchtune_tiny/hh_rlhf_tiny.json").string(), opts(), &stats);
  EXPECT_EQ(stats.format, DataFormat::kPreference);
  ASSERT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny[0].prompt.size(), 1u);
  EXPECT_EQ(tiny[0].chosen[0]["content"], "Fix the hole.");
}

TEST(RealData, MtBenchQuestionFilesAreRefusedClearly) {
  REQUIRE_SHARED_DATA(root);
  for (const char* file : {"mt_bench/question.jsonl", "mt_bench/vicuna_bench/question.jsonl",
                           "mt_bench_x/de/question.jsonl", "mt_bench_x/es/question.jsonl",
                           "mt_bench_x/fr/question.jsonl", "mt_bench_x/it/question.jsonl"})
    expect_error([&] { read_conversations((root / file).string(), opts()); }, {":1:", "MT-bench"});
  expect_error([&] { read_conversations((root / "mt_bench/reference_answer/gpt-4.jsonl").string(), opts()); },
               {"gpt-4.jsonl:1", "'choices'", "`format`"});
}

}  // namespace
}  // namespace st::datasets
