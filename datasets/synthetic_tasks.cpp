// The synthetic task generator: draws a problem, fills the language's
// template, and keeps it unless its prompt is excluded or already used.
#include "datasets/synthetic_tasks.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/error.h"
#include "datasets/batching.h"
#include "datasets/task_text.h"

namespace st::datasets {
namespace {

// Draws per sample before a (task, language) pair counts as run out. The
// smallest pairs hold 100 prompts; missing the last free one in this many
// uniform draws has probability (0.99)^4096, about 1e-18.
constexpr int kMaxAttempts = 4096;

struct Problem {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string answer;
};

std::string join_digits(const std::vector<int>& digits) {
  std::string out;
  for (int d : digits) {
    if (!out.empty()) out += ' ';
    out += static_cast<char>('0' + d);
  }
  return out;
}

std::vector<int> draw_digits(Shuffler& rng, size_t n) {
  std::vector<int> digits(n);
  for (int& d : digits) d = static_cast<int>(rng.below(10));
  return digits;
}

// One problem of task `task` (index into task_names()). Answers are
// single tokens or short runs of single-character tokens (digits and
// letters split by spaces), which is what makes them learnable by a tiny
// model: the split-digits tokenizer gives every digit its own id.
Problem draw_problem(size_t task, const LanguageText& language, Shuffler& rng) {
  switch (task) {
    case 0: {  // add: two single digits
      int a = static_cast<int>(rng.below(10)), b = static_cast<int>(rng.below(10));
      return {{{"a", std::to_string(a)}, {"b", std::to_string(b)}}, std::to_string(a + b)};
    }
    case 1: {  // successor of 0..99
      int n = static_cast<int>(rng.below(100));
      return {{{"n", std::to_string(n)}}, std::to_string(n + 1)};
    }
    case 2: {  // reverse three digits
      std::vector<int> digits = draw_digits(rng, 3);
      std::vector<int> reversed(digits.rbegin(), digits.rend());
      return {{{"list", join_digits(digits)}}, join_digits(reversed)};
    }
    case 3: {  // sort three digits ascending
      std::vector<int> digits = draw_digits(rng, 3);
      std::vector<int> sorted = digits;
      std::sort(sorted.begin(), sorted.end());
      return {{{"list", join_digits(digits)}}, join_digits(sorted)};
    }
    case 4: {  // count one of two letters in a list of 3..6
      char x = static_cast<char>('a' + rng.below(26));
      char y = static_cast<char>('a' + (x - 'a' + 1 + rng.below(25)) % 26);
      size_t length = 3 + rng.below(4);
      char target = rng.below(2) ? x : y;
      std::string list;
      int count = 0;
      for (size_t i = 0; i < length; ++i) {
        char c = rng.below(2) ? x : y;
        count += c == target;
        if (!list.empty()) list += ' ';
        list += c;
      }
      return {{{"x", std::string(1, target)}, {"list", list}}, std::to_string(count)};
    }
    case 5: {  // copy two different words of the language
      const auto& words = language.words;
      size_t i = rng.below(words.size());
      size_t j = (i + 1 + rng.below(words.size() - 1)) % words.size();
      std::string pair = words[i] + " " + words[j];
      return {{{"words", pair}}, pair};
    }
  }
  ST_CHECK(false, "task index ", task);
}

std::string fill(std::string text, const Problem& problem) {
  for (const auto& [name, value] : problem.fields) {
    const std::string key = "{" + name + "}";
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  }
  return text;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Positions of `names` in `known`; an unknown name is a user error.
std::vector<size_t> resolve(const std::vector<std::string>& names, const std::vector<std::string>& known,
                            const char* what) {
  if (names.empty()) fail("no ", what, " selected; choose from ", join_names(known));
  std::vector<size_t> out;
  for (const std::string& name : names) {
    auto it = std::find(known.begin(), known.end(), name);
    if (it == known.end()) fail("unknown ", what, " \"", name, "\"; choose from ", join_names(known));
    size_t index = static_cast<size_t>(it - known.begin());
    if (std::find(out.begin(), out.end(), index) == out.end()) out.push_back(index);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& task_languages() {
  static const std::vector<std::string> codes = [] {
    std::vector<std::string> out;
    for (const LanguageText& text : language_texts()) out.push_back(text.code);
    return out;
  }();
  return codes;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {"add", "successor", "reverse", "sort", "count", "copy"};
  static_assert(kTaskCount == 6);
  return names;
}

std::vector<TaskSample> make_tasks(const TaskOptions& options) {
  const std::vector<size_t> tasks = resolve(options.tasks, task_names(), "task");
  const std::vector<size_t> languages = resolve(options.languages, task_languages(), "language");
  std::vector<std::pair<size_t, size_t>> cells;
  for (size_t t : tasks)
    for (size_t l : languages) cells.emplace_back(t, l);

  Shuffler rng(options.seed);
  std::unordered_set<std::string> used;
  std::vector<bool> exhausted(cells.size(), false);
  size_t live = cells.size();
  std::vector<TaskSample> out;
  out.reserve(options.count);
  for (size_t turn = 0; out.size() < options.count && live > 0; ++turn) {
    const size_t c = turn % cells.size();
    if (exhausted[c]) continue;
    const auto [task, lang] = cells[c];
    const LanguageText& text = language_texts()[lang];
    bool placed = false;
    for (int attempt = 0; attempt < kMaxAttempts && !placed; ++attempt) {
      Problem problem = draw_problem(task, text, rng);
      std::string prompt = fill(text.prompts[task], problem);
      if (options.exclude_prompts && options.exclude_prompts->count(prompt)) continue;
      if (options.distinct && !used.insert(prompt).second) continue;
      out.push_back({text.code, task_names()[task], std::move(prompt), std::move(problem.answer)});
      placed = true;
    }
    if (!placed) {
      exhausted[c] = true;
      --live;
    }
  }
  rng.shuffle(out);
  return out;
}

TaskSplits make_task_splits(const TaskOptions& options, size_t train_count, size_t test_count) {
  TaskSplits splits;
  TaskOptions train = options;
  train.count = train_count;
  train.exclude_prompts = nullptr;
  train.distinct = false;
  splits.train = make_tasks(train);

  std::unordered_set<std::string> seen;
  for (const TaskSample& s : splits.train) seen.insert(s.prompt);
  TaskOptions test = options;
  test.count = test_count;
  // A seed of its own, derived so that neighbouring user seeds do not share
  // streams (seed s's test set is not seed s+1's train set).
  test.seed = Shuffler(options.seed ^ 0x7e57'5eed'7e57'5eedull).next();
  test.exclude_prompts = &seen;
  test.distinct = true;
  splits.test = make_tasks(test);
  return splits;
}

std::string tasks_to_jsonl(const std::vector<TaskSample>& samples) {
  std::string out;
  for (const TaskSample& s : samples) {
    nlohmann::ordered_json record;
    record["messages"] = nlohmann::ordered_json::array({
        {{"role", "user"}, {"content", s.prompt}},
        {{"role", "assistant"}, {"content", s.answer}},
    });
    record["task"] = s.task;
    record["language"] = s.language;
    out += record.dump();
    out += '\n';
  }
  return out;
}

std::string near_miss(const std::string& answer, Shuffler& rng) {
  const bool number = !answer.empty() && std::all_of(answer.begin(), answer.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (number) {
    const long value = std::stol(answer);
    return std::to_string(value == 0 || rng.below(2) ? value + 1 : value - 1);
  }
  std::vector<std::string> items;
  for (size_t start = 0; start <= answer.size();) {
    size_t end = answer.find(' ', start);
    if (end == std::string::npos) end = answer.size();
    items.push_back(answer.substr(start, end - start));
    start = end + 1;
  }
  std::vector<size_t> swappable;
  for (size_t i = 0; i + 1 < items.size(); ++i)
    if (items[i] != items[i + 1]) swappable.push_back(i);
  if (swappable.empty()) {
    items.push_back(items.back());
  } else {
    const size_t i = swappable[rng.below(swappable.size())];
    std::swap(items[i], items[i + 1]);
  }
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : " ") + item;
  return out;
}

std::string tasks_to_preference_jsonl(const std::vector<TaskSample>& samples, uint64_t seed) {
  Shuffler rng(seed);
  std::string out;
  for (const TaskSample& s : samples) {
    nlohmann::ordered_json record;
    record["prompt"] = nlohmann::ordered_json::array({{{"role", "user"}, {"content", s.prompt}}});
    record["chosen"] = nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", s.answer}}});
    record["rejected"] = nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", near_miss(s.answer, rng)}}});
    record["task"] = s.task;
    record["language"] = s.language;
    out += record.dump();
    out += '\n';
  }
  return out;
}

std::string task_corpus(const TaskOptions& options) {
  const std::vector<size_t> languages = resolve(options.languages, task_languages(), "language");
  // The role names appear in every rendered conversation.
  std::string out = "system\nuser\nassistant\n";
  for (size_t l : languages) out += language_texts()[l].prose + "\n";
  TaskOptions all = options;
  all.exclude_prompts = nullptr;
  all.distinct = false;
  for (const TaskSample& s : make_tasks(all)) out += s.prompt + "\n" + s.answer + "\n";
  return out;
}

}  // namespace st::datasets
