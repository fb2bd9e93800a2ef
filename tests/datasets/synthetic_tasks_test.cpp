// Synthetic tasks: a seed gives the same samples, every (task, language)
// pair appears, answers are right (recomputed here from the prompt text,
// not from the generator's numbers), test prompts never repeat train ones,
// and the readers take the JSONL as messages-format chat data.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "datasets/readers.h"
#include "datasets/synthetic_tasks.h"

using namespace st::datasets;

namespace {

std::vector<int> digits_in(const std::string& text) {
  std::vector<int> out;
  for (char c : text)
    if (c >= '0' && c <= '9') out.push_back(c - '0');
  return out;
}

std::string join(const std::vector<int>& digits) {
  std::string out;
  for (int d : digits) out += (out.empty() ? "" : " ") + std::to_string(d);
  return out;
}

// The text after the prompt's last ": " (the digit list).
std::string tail(const std::string& prompt) { return prompt.substr(prompt.rfind(": ") + 2); }

// The answer worked out from the prompt alone.
std::string expected_answer(const TaskSample& s) {
  if (s.task == "add") {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(s.prompt, m, std::regex("(\\d) \\+ (\\d)"))) << s.prompt;
    return std::to_string(std::stoi(m[1]) + std::stoi(m[2]));
  }
  if (s.task == "successor") {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(s.prompt, m, std::regex("\\d+"))) << s.prompt;
    return std::to_string(std::stoi(m[0]) + 1);
  }
  if (s.task == "reverse") {
    std::vector<int> d = digits_in(tail(s.prompt));
    EXPECT_EQ(d.size(), 3u) << s.prompt;
    std::reverse(d.begin(), d.end());
    return join(d);
  }
  if (s.task == "sort") {
    std::vector<int> d = digits_in(tail(s.prompt));
    EXPECT_EQ(d.size(), 3u) << s.prompt;
    std::sort(d.begin(), d.end());
    return join(d);
  }
  if (s.task == "count") {
    // The quoted letter, then the list after the question mark.
    std::smatch m;
    EXPECT_TRUE(std::regex_search(s.prompt, m, std::regex("(?:«|\"|„) ?([a-z]) ?(?:»|\"|“)"))) << s.prompt;
    const char letter = m[1].str()[0];
    const std::string list = s.prompt.substr(s.prompt.rfind("? ") + 2);
    EXPECT_TRUE(std::regex_match(list, std::regex("[a-z]( [a-z]){2,5}"))) << s.prompt;
    return std::to_string(std::count(list.begin(), list.end(), letter));
  }
  if (s.task == "copy") {
    // The words stand on a line of their own, two different ones.
    const std::string words = s.prompt.substr(s.prompt.rfind('\n') + 1);
    const size_t space = words.find(' ');
    EXPECT_TRUE(space != std::string::npos && words.substr(0, space) != words.substr(space + 1)) << s.prompt;
    return words;
  }
  ADD_FAILURE() << "unexpected task " << s.task;
  return "";
}

bool same(const std::vector<TaskSample>& a, const std::vector<TaskSample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].prompt != b[i].prompt || a[i].answer != b[i].answer || a[i].task != b[i].task ||
        a[i].language != b[i].language)
      return false;
  return true;
}

TaskOptions with(size_t count, uint64_t seed) {
  TaskOptions options;
  options.count = count;
  options.seed = seed;
  return options;
}

}  // namespace

TEST(SyntheticTasks, SameSeedSameSamplesOtherSeedOthers) {
  EXPECT_TRUE(same(make_tasks(with(300, 7)), make_tasks(with(300, 7))));
  EXPECT_FALSE(same(make_tasks(with(300, 7)), make_tasks(with(300, 8))));
}

TEST(SyntheticTasks, SeedZeroIsPinned) {
  // A changed generator changes every demo run; this says so on purpose.
  // Pairs are taken task by task, language by language, then shuffled.
  std::vector<TaskSample> samples = make_tasks(with(3, 0));
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].prompt, "¿Cuánto es 9 + 4?");
  EXPECT_EQ(samples[1].prompt, "What is 5 + 0?");
  EXPECT_EQ(samples[2].prompt, "Quant fa 7 + 0?");
  EXPECT_EQ(samples[0].answer, "13");
}

TEST(SyntheticTasks, EveryTaskAndLanguageEquallyOften) {
  std::vector<TaskSample> samples = make_tasks(with(6 * 9 * 4, 1));
  ASSERT_EQ(samples.size(), 216u);
  std::map<std::pair<std::string, std::string>, int> cells;
  for (const TaskSample& s : samples) ++cells[{s.task, s.language}];
  EXPECT_EQ(cells.size(), 54u);
  for (const auto& [cell, n] : cells) EXPECT_EQ(n, 4) << cell.first << " " << cell.second;
  for (const std::string& language : task_languages())
    for (const std::string& task : task_names()) EXPECT_TRUE(cells.count({task, language})) << task << language;
}

TEST(SyntheticTasks, AnswersAreRight) {
  for (const TaskSample& s : make_tasks(with(5400, 3))) {
    EXPECT_EQ(s.answer, expected_answer(s)) << s.language << " " << s.task << ": " << s.prompt;
    EXPECT_EQ(s.prompt.find('{'), std::string::npos) << "unfilled template: " << s.prompt;
    EXPECT_FALSE(s.answer.empty());
    EXPECT_LE(s.answer.size(), 24u) << "answers are meant to be short: " << s.answer;
  }
}

TEST(SyntheticTasks, TestSplitSharesNoPromptWithTrainAndHasNoRepeats) {
  TaskSplits splits = make_task_splits(with(0, 11), 3000, 300);
  EXPECT_EQ(splits.train.size(), 3000u);
  EXPECT_EQ(splits.test.size(), 300u);
  std::set<std::string> train;
  for (const TaskSample& s : splits.train) train.insert(s.prompt);
  std::set<std::string> test;
  for (const TaskSample& s : splits.test) {
    EXPECT_FALSE(train.count(s.prompt)) << s.prompt;
    EXPECT_TRUE(test.insert(s.prompt).second) << "repeated: " << s.prompt;
  }
  EXPECT_TRUE(same(splits.test, make_task_splits(with(0, 11), 3000, 300).test));
}

TEST(SyntheticTasks, RunOutPairStopsAndOthersFillIn) {
  TaskOptions options = with(250, 2);
  options.languages = {"en"};
  options.tasks = {"add", "sort"};
  options.distinct = true;
  std::vector<TaskSample> samples = make_tasks(options);
  ASSERT_EQ(samples.size(), 250u);
  // add has 100 prompts per language; sort (1000) takes the rest.
  EXPECT_EQ(std::count_if(samples.begin(), samples.end(), [](const TaskSample& s) { return s.task == "add"; }), 100);

  options.tasks = {"add"};
  options.count = 150;
  EXPECT_EQ(make_tasks(options).size(), 100u);  // every pair ran out: shorter, no hang

  std::unordered_set<std::string> all;
  for (const TaskSample& s : make_tasks(options)) all.insert(s.prompt);
  options.exclude_prompts = &all;
  EXPECT_TRUE(make_tasks(options).empty());
}

TEST(SyntheticTasks, SubsetsAndUnknownNames) {
  TaskOptions options = with(40, 5);
  options.languages = {"eu", "gl"};
  options.tasks = {"copy"};
  for (const TaskSample& s : make_tasks(options)) {
    EXPECT_TRUE(s.language == "eu" || s.language == "gl");
    EXPECT_EQ(s.task, "copy");
  }
  options.languages = {"xx"};
  try {
    make_tasks(options);
    FAIL() << "expected an error";
  } catch (const st::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown language \"xx\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("en, es, ca"), std::string::npos) << e.what();
  }
  options.languages = {"en"};
  options.tasks = {"divide"};
  EXPECT_THROW(make_tasks(options), st::Error);
  options.tasks = {};
  EXPECT_THROW(make_tasks(options), st::Error);
}

TEST(SyntheticTasks, ReadersTakeTheJsonl) {
  std::vector<TaskSample> samples = make_tasks(with(108, 4));
  const std::string jsonl = tasks_to_jsonl(samples);
  ReadStats stats;
  std::vector<Conversation> read = parse_conversations(jsonl, "tasks.jsonl", ReaderOptions{}, &stats);
  EXPECT_EQ(stats.format, DataFormat::kMessages);
  ASSERT_EQ(read.size(), samples.size());
  for (size_t i = 0; i < read.size(); ++i) {
    ASSERT_EQ(read[i].messages.size(), 2u);
    EXPECT_EQ(read[i].messages[0]["role"], "user");
    EXPECT_EQ(read[i].messages[0]["content"], samples[i].prompt);
    EXPECT_EQ(read[i].messages[1]["role"], "assistant");
    EXPECT_EQ(read[i].messages[1]["content"], samples[i].answer);
  }
  // The metadata keys are on every line.
  EXPECT_NE(jsonl.find("\"task\":\"" + samples[0].task + "\",\"language\":\"" + samples[0].language + "\""),
            std::string::npos);
}

TEST(SyntheticTasks, PreferencePairsSetTheAnswerAgainstANearMiss) {
  std::vector<TaskSample> samples = make_tasks(with(216, 5));
  const std::string jsonl = tasks_to_preference_jsonl(samples, 9);
  EXPECT_EQ(jsonl, tasks_to_preference_jsonl(samples, 9));
  ReadStats stats;
  std::vector<PreferencePair> read = parse_preferences(jsonl, "pairs.jsonl", ReaderOptions{}, &stats);
  ASSERT_EQ(read.size(), samples.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].prompt[0]["content"], samples[i].prompt);
    EXPECT_EQ(read[i].chosen[0]["content"], samples[i].answer);
    const std::string wrong = read[i].rejected[0]["content"];
    EXPECT_NE(wrong, samples[i].answer) << samples[i].prompt;
    // A near miss: the same shape (a number, or as many items but one).
    const auto items = [](const std::string& t) { return std::count(t.begin(), t.end(), ' ') + 1; };
    EXPECT_LE(std::abs(items(wrong) - items(samples[i].answer)), 1) << wrong << " for " << samples[i].answer;
  }
  Shuffler rng(1);
  EXPECT_EQ(near_miss("0", rng), "1");
  const std::string n = near_miss("7", rng);
  EXPECT_TRUE(n == "6" || n == "8") << n;
  EXPECT_EQ(near_miss("1 2", rng), "2 1");
  EXPECT_EQ(near_miss("a a", rng), "a a a");
}

TEST(SyntheticTasks, CorpusHoldsTasksAndProseOfEveryLanguage) {
  TaskOptions options = with(200, 6);
  const std::string corpus = task_corpus(options);
  for (const TaskSample& s : make_tasks(options)) EXPECT_NE(corpus.find(s.prompt + "\n" + s.answer + "\n"), std::string::npos);
  for (const char* phrase : {"Salamandra is a family", "Salamandra es una familia", "Salamandra és una família",
                             "Salamandra ist eine Familie", "Salamandra est une famille", "Salamandra è una famiglia",
                             "Salamandra é uma família", "Salamandra é unha familia", "Salamandra Europako"})
    EXPECT_NE(corpus.find(phrase), std::string::npos) << phrase;
  options.languages = {"en"};
  EXPECT_EQ(task_corpus(options).find("Salamandra es una"), std::string::npos);
}
