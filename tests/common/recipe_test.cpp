// Tests of recipe loading: one test per kind of user mistake, each checking
// the whole message (file, line, key, suggestion), since the message is the
// product here; then overrides, defaults, path resolution, the round trip of
// the resolved recipe and the canonical text used for cache keys.
#include "common/recipe.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st {
namespace {

namespace fs = std::filesystem;
using StringMap = std::map<std::string, std::string>;
using StringList = std::vector<std::string>;

// A schema shaped like the real ones: every key type, ranges, choices, a
// required must-exist path, an optional key, defaults of every kind.
RecipeSchema test_schema() {
  return {
      {.key = "model.path", .type = KeyType::kPath, .must_exist = true, .help = "model directory"},
      {.key = "data.format", .type = KeyType::kString, .default_value = "alpaca",
       .choices = {"alpaca", "sharegpt", "messages"}, .help = "record layout"},
      {.key = "data.max_length", .type = KeyType::kInt, .default_value = 2048, .min = 1, .max = 8192,
       .affects = KeyEffect::kCache, .help = "tokens per sequence"},
      {.key = "data.paths", .type = KeyType::kPathList, .optional = true, .help = "training files"},
      {.key = "data.fields", .type = KeyType::kStringMap,
       .default_value = StringMap{{"prompt", "instruction"}, {"response", "output"}}, .help = "field names"},
      {.key = "data.weights", .type = KeyType::kNumberMap, .default_value = StringMap{}, .help = "per-name numbers"},
      {.key = "data.shuffle", .type = KeyType::kBool, .default_value = true, .help = "shuffle records"},
      {.key = "data.tags", .type = KeyType::kStringList, .default_value = StringList{}, .help = "labels"},
      {.key = "data.name", .type = KeyType::kString, .optional = true, .help = "dataset name"},
      {.key = "optimizer.lr", .type = KeyType::kFloat, .default_value = 2e-5, .min = 0.0,
       .affects = KeyEffect::kResults, .help = "learning rate"},
      {.key = "schedule.warmup_ratio", .type = KeyType::kFloat, .default_value = 0, .min = 0.0, .max = 1.0,
       .help = "warmup share"},
      {.key = "training.epochs", .type = KeyType::kInt, .default_value = 1, .min = 1, .help = "passes over data"},
      {.key = "checkpointing.output_dir", .type = KeyType::kPath, .default_value = "runs/out", .help = "outputs"},
      {.key = "logging.run_name", .type = KeyType::kString, .default_value = "run", .help = "run name"},
  };
}

// A fresh directory per test holding a `model` dir, so must_exist passes.
class RecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("st_recipe_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Loads `toml` as if it were the file "recipe.toml" in dir_.
  Recipe parse(const std::string& toml, const std::vector<std::string>& overrides = {}) {
    return Recipe::from_string(toml, "recipe.toml", dir_.string(), test_schema(), overrides);
  }

  // The st::Error message `toml` (+ overrides) produces, or "no error".
  std::string error(const std::string& toml, const std::vector<std::string>& overrides = {}) {
    return error_of([&] { parse(toml, overrides); });
  }

  // The message of the exception of type E that `f` throws (st::Error: a
  // user error; st::InternalError: a bug of ours, outside that hierarchy),
  // or "no error".
  template <typename E = Error>
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const E& e) {
      return e.what();
    }
    return "no error";
  }
  static std::string internal_error_of(const std::function<void()>& f) { return error_of<InternalError>(f); }

  std::string path(const std::string& name) const { return (dir_ / name).lexically_normal().string(); }

  fs::path dir_;
};

const char* kMinimal = "[model]\npath = \"model\"\n";

// ---- values and defaults ---------------------------------------------------

TEST_F(RecipeTest, ReadsEveryTypeFromTheFile) {
  Recipe r = parse(R"([model]
path = "model"

[data]
format = "sharegpt"
max_length = 512
paths = ["a.jsonl", "sub/b.jsonl"]
fields = { prompt = "q", response = "a" }
shuffle = false
tags = ["x", "y"]
name = "demo"

[optimizer]
lr = 3e-4

[schedule]
warmup_ratio = 1    # an integer where a float is expected is fine
)");
  EXPECT_EQ(r.get_string("model.path"), path("model"));
  EXPECT_EQ(r.get_string("data.format"), "sharegpt");
  EXPECT_EQ(r.get_int("data.max_length"), 512);
  EXPECT_EQ(r.get_list("data.paths"), (StringList{path("a.jsonl"), path("sub/b.jsonl")}));
  EXPECT_EQ(r.get_map("data.fields"), (StringMap{{"prompt", "q"}, {"response", "a"}}));
  EXPECT_FALSE(r.get_bool("data.shuffle"));
  EXPECT_EQ(r.get_list("data.tags"), (StringList{"x", "y"}));
  EXPECT_EQ(r.get_string("data.name"), "demo");
  EXPECT_DOUBLE_EQ(r.get_float("optimizer.lr"), 3e-4);
  EXPECT_DOUBLE_EQ(r.get_float("schedule.warmup_ratio"), 1.0);
  EXPECT_EQ(r.source(), "recipe.toml");
}

TEST_F(RecipeTest, FillsDefaults) {
  Recipe r = parse(kMinimal);
  EXPECT_EQ(r.get_string("data.format"), "alpaca");
  EXPECT_EQ(r.get_int("data.max_length"), 2048);
  EXPECT_EQ(r.get_map("data.fields"), (StringMap{{"prompt", "instruction"}, {"response", "output"}}));
  EXPECT_TRUE(r.get_bool("data.shuffle"));
  EXPECT_TRUE(r.get_list("data.tags").empty());
  EXPECT_DOUBLE_EQ(r.get_float("optimizer.lr"), 2e-5);
  EXPECT_DOUBLE_EQ(r.get_float("schedule.warmup_ratio"), 0.0);  // integer default, stored as float
  EXPECT_EQ(r.get_int("training.epochs"), 1);
  EXPECT_EQ(r.get_string("logging.run_name"), "run");
  EXPECT_FALSE(r.has("data.name"));
  EXPECT_FALSE(r.has("data.paths"));
  EXPECT_TRUE(r.has("data.format"));
}

TEST_F(RecipeTest, TablesMayBeWrittenAsDottedKeysOrSubTables) {
  Recipe r = parse("model.path = \"model\"\ndata.max_length = 7\n[data.fields]\nprompt = \"p\"\n");
  EXPECT_EQ(r.get_int("data.max_length"), 7);
  EXPECT_EQ(r.get_map("data.fields"), (StringMap{{"prompt", "p"}}));
}

TEST_F(RecipeTest, WhereSaysWhereEachValueCameFrom) {
  Recipe r = parse("[model]\npath = \"model\"\n[data]\nmax_length = 7\n", {"data.format=sharegpt"});
  EXPECT_EQ(r.where("data.max_length"), "recipe.toml:4");
  EXPECT_EQ(r.where("data.format"), "override data.format=sharegpt");
  EXPECT_EQ(r.where("training.epochs"), "default");
  EXPECT_EQ(r.where("data.name"), "not set");
}

// ---- errors in the file ----------------------------------------------------

TEST_F(RecipeTest, SyntaxErrorNamesFileLineAndColumn) {
  std::string message = error("[model]\npath = \"model\"\n[data]\nmax_length = = 3\n");
  EXPECT_EQ(message.rfind("recipe.toml:4:", 0), 0u) << message;
  EXPECT_NE(message.find("TOML syntax error"), std::string::npos) << message;
}

TEST_F(RecipeTest, DuplicateKeyIsASyntaxError) {
  std::string message = error("[model]\npath = \"model\"\npath = \"model\"\n");
  EXPECT_EQ(message.rfind("recipe.toml:3:", 0), 0u) << message;
}

TEST_F(RecipeTest, UnknownKeySuggestsTheNearestKey) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n\n[data]\nformat = \"alpaca\"\n\nmax_lenght = 7\n"),
            "unknown key \"data.max_lenght\" (recipe.toml:7); did you mean \"data.max_length\"?");
}

TEST_F(RecipeTest, UnknownKeySuggestsTheSameNameInAnotherSection) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n[training]\nmax_length = 7\n"),
            "unknown key \"training.max_length\" (recipe.toml:4); did you mean \"data.max_length\"?");
}

TEST_F(RecipeTest, UnknownKeyWithNoNearNameListsTheSection) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n[training]\ncolour = 7\n"),
            "unknown key \"training.colour\" (recipe.toml:4); [training] has: epochs");
}

TEST_F(RecipeTest, UnknownSectionSuggestsTheNearestSection) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n\n[trainig]\nepochs = 2\n"),
            "unknown section \"trainig\" (recipe.toml:4); did you mean \"training\"?");
  EXPECT_EQ(error("[model]\npath = \"model\"\n[zzzzzzzz]\nx = 1\n"), "unknown section \"zzzzzzzz\" (recipe.toml:3)");
}

TEST_F(RecipeTest, QuotedDottedKeyIsNotTheDottedKey) {
  EXPECT_EQ(error("\"model.path\" = \"model\"\n"),
            "key \"model.path\" is quoted, so its dots are part of one name (recipe.toml:1); "
            "write it without quotes");
}

TEST_F(RecipeTest, SectionThatIsNotATable) {
  EXPECT_EQ(error("data = 3\n[model]\npath = \"model\"\n"),
            "data must be a table (the section [data]), got integer 3 (recipe.toml:1)");
}

TEST_F(RecipeTest, WrongTypesNameKeyLineAndWhatWasGiven) {
  auto with = [&](const std::string& section, const std::string& line) {
    return error("[model]\npath = \"model\"\n\n\n\n[" + section + "]\n" + line + "\n");
  };
  EXPECT_EQ(with("data", "max_length = \"abc\""),
            "data.max_length must be an integer, got string \"abc\" (recipe.toml:7)");
  EXPECT_EQ(with("data", "max_length = 2.5"), "data.max_length must be an integer, got float 2.5 (recipe.toml:7)");
  EXPECT_EQ(with("data", "shuffle = 1"), "data.shuffle must be a boolean (true or false), got integer 1 (recipe.toml:7)");
  EXPECT_EQ(with("optimizer", "lr = \"fast\""), "optimizer.lr must be a number, got string \"fast\" (recipe.toml:7)");
  EXPECT_EQ(with("optimizer", "lr = nan"), "optimizer.lr must be a number, got nan (recipe.toml:7)");
  EXPECT_EQ(with("data", "format = 3"), "data.format must be a string, got integer 3 (recipe.toml:7)");
  EXPECT_EQ(with("data", "paths = \"a.jsonl\""),
            "data.paths must be a list of paths (strings), got string \"a.jsonl\" (recipe.toml:7)");
  EXPECT_EQ(with("data", "tags = [\"a\", 2]"), "data.tags[1] must be a string, got integer 2 (recipe.toml:7)");
  EXPECT_EQ(with("data", "fields = \"x\""), "data.fields must be a table of strings, got string \"x\" (recipe.toml:7)");
  EXPECT_EQ(with("data", "fields = { prompt = 1 }"), "data.fields.prompt must be a string, got integer 1 (recipe.toml:7)");
  EXPECT_EQ(with("data", "max_length = [1]"), "data.max_length must be an integer, got array [ 1 ] (recipe.toml:7)");
}

TEST_F(RecipeTest, OutOfRange) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n[data]\nmax_length = 0\n"),
            "data.max_length must be between 1 and 8192, got 0 (recipe.toml:4)");
  EXPECT_EQ(error("[model]\npath = \"model\"\n[training]\nepochs = -1\n"),
            "training.epochs must be at least 1, got -1 (recipe.toml:4)");
  EXPECT_EQ(error("[model]\npath = \"model\"\n[schedule]\nwarmup_ratio = 1.5\n"),
            "schedule.warmup_ratio must be between 0.0 and 1.0, got 1.5 (recipe.toml:4)");
  EXPECT_EQ(error("[model]\npath = \"model\"\n[data]\nmax_length = 8192\n"), "no error");  // bounds are inclusive
}

TEST_F(RecipeTest, NotAmongTheChoicesListsThemAndSuggests) {
  EXPECT_EQ(error("[model]\npath = \"model\"\n[data]\nformat = \"sharegtp\"\n"),
            "data.format must be one of \"alpaca\", \"sharegpt\", \"messages\", got \"sharegtp\" (recipe.toml:4); "
            "did you mean \"sharegpt\"?");
  EXPECT_EQ(error("[model]\npath = \"model\"\n[data]\nformat = \"csv\"\n"),
            "data.format must be one of \"alpaca\", \"sharegpt\", \"messages\", got \"csv\" (recipe.toml:4)");
}

TEST_F(RecipeTest, MissingRequiredKey) {
  EXPECT_EQ(error("[data]\nmax_length = 5\n"),
            "recipe.toml: missing required recipe keys:\n  model.path: add path = ... under [model] (model directory)");
}

TEST_F(RecipeTest, PathThatMustExistButDoesNot) {
  EXPECT_EQ(error("[model]\npath = \"nope\"\n"),
            "model.path: \"" + path("nope") + "\" does not exist (recipe.toml:2)");
  EXPECT_EQ(error("[model]\npath = \"\"\n"),
            "model.path is empty, but must name an existing file or directory (recipe.toml:2)");
}

TEST_F(RecipeTest, TildeIsNotExpandedAndSaysSo) {
  EXPECT_EQ(error("[model]\npath = \"~/models/2b\"\n"),
            "model.path is \"~/models/2b\", but ~ is not expanded in recipes; write the full path (recipe.toml:2)");
}

TEST_F(RecipeTest, LoadNamesTheFileAsGiven) {
  std::string file = path("recipe.toml");
  write_file_atomic(file, "[model]\npath = \"model\"\n[data]\nmax_lenght = 3\n");
  EXPECT_EQ(error_of([&] { Recipe::load(file, test_schema()); }),
            "unknown key \"data.max_lenght\" (" + file + ":4); did you mean \"data.max_length\"?");
  EXPECT_EQ(error_of([&] { Recipe::load(path("absent.toml"), test_schema()); }),
            "recipe " + path("absent.toml") + " does not exist");
  EXPECT_EQ(error_of([&] { Recipe::load(path("model"), test_schema()); }),
            "recipe " + path("model") + " is a directory; give the path of a .toml file");
}

// ---- paths -----------------------------------------------------------------

TEST_F(RecipeTest, FilePathsResolveAgainstTheRecipeDirectory) {
  fs::create_directories(dir_ / "recipes");
  fs::create_directories(dir_ / "other");
  std::string file = path("recipes/sft.toml");
  write_file_atomic(file, "[model]\npath = \"../model/\"\n[data]\npaths = [\"x.jsonl\", \"/abs/./y.jsonl\"]\n");
  fs::path saved = fs::current_path();
  fs::current_path(dir_ / "other");  // the working directory must not matter
  Recipe r = Recipe::load(file, test_schema());
  fs::current_path(saved);
  EXPECT_EQ(r.get_string("model.path"), path("model"));
  EXPECT_EQ(r.get_list("data.paths"), (StringList{path("recipes/x.jsonl"), "/abs/y.jsonl"}));
  EXPECT_EQ(r.source(), file);
}

TEST_F(RecipeTest, OverridePathsAndDefaultsResolveAgainstTheWorkingDirectory) {
  fs::create_directories(dir_ / "cwd" / "m2");
  fs::path saved = fs::current_path();
  fs::current_path(dir_ / "cwd");
  Recipe r = Recipe::from_string(kMinimal, "recipe.toml", dir_.string(), test_schema(),
                                 {"model.path=m2", "data.paths=[\"p.jsonl\"]"});
  fs::current_path(saved);
  EXPECT_EQ(r.get_string("model.path"), path("cwd/m2"));
  EXPECT_EQ(r.get_list("data.paths"), (StringList{path("cwd/p.jsonl")}));
  EXPECT_EQ(r.get_string("checkpointing.output_dir"), path("cwd/runs/out"));
}

// ---- overrides -------------------------------------------------------------

TEST_F(RecipeTest, OverridesParseTomlValuesOfEveryType) {
  Recipe r = parse(kMinimal, {"data.max_length=4096", "optimizer.lr=1e-4", "data.shuffle=false",
                              "data.tags=[\"a\", \"b\"]", "data.format=\"messages\"", "schedule.warmup_ratio=1",
                              "data.fields={ prompt = \"p\" }"});
  EXPECT_EQ(r.get_int("data.max_length"), 4096);
  EXPECT_DOUBLE_EQ(r.get_float("optimizer.lr"), 1e-4);
  EXPECT_FALSE(r.get_bool("data.shuffle"));
  EXPECT_EQ(r.get_list("data.tags"), (StringList{"a", "b"}));
  EXPECT_EQ(r.get_string("data.format"), "messages");
  EXPECT_DOUBLE_EQ(r.get_float("schedule.warmup_ratio"), 1.0);
  EXPECT_EQ(r.get_map("data.fields"), (StringMap{{"prompt", "p"}}));
}

TEST_F(RecipeTest, OverridesTakeBareWordsAsStrings) {
  Recipe r = parse(kMinimal, {"data.format=sharegpt", "data.name=my data set", "logging.run_name=2024",
                              "data.name=true"});
  EXPECT_EQ(r.get_string("data.format"), "sharegpt");
  EXPECT_EQ(r.get_string("logging.run_name"), "2024");  // a string key keeps the text as typed
  EXPECT_EQ(r.get_string("data.name"), "true");         // the last override of a key wins
  EXPECT_EQ(parse(kMinimal, {"data.name=my data set"}).get_string("data.name"), "my data set");
}

TEST_F(RecipeTest, OverridesReplaceFileValuesAndSetTableEntries) {
  Recipe r = parse("[model]\npath = \"model\"\n[data]\nmax_length = 5\n",
                   {"data.max_length=6", "data.fields.response=answer"});
  EXPECT_EQ(r.get_int("data.max_length"), 6);
  // The entry lands in the default table rather than replacing it.
  EXPECT_EQ(r.get_map("data.fields"), (StringMap{{"prompt", "instruction"}, {"response", "answer"}}));
}

TEST_F(RecipeTest, NumberTablesHoldExactNumbersAndRoundTrip) {
  Recipe r = parse("[model]\npath = \"model\"\n[data]\nweights = { \"q_proj\" = 16, \"a\\\\.b\" = 0.1 }\n",
                   {"data.weights.up_proj=3"});
  EXPECT_EQ(r.get_map("data.weights"), (StringMap{{"q_proj", "16"}, {"a\\.b", "0.1"}, {"up_proj", "3"}}));
  // Written back unquoted, so the resolved recipe reads back the same.
  EXPECT_NE(r.resolved_toml().find("q_proj = 16"), std::string::npos) << r.resolved_toml();
  EXPECT_TRUE(Recipe::from_string(r.resolved_toml(), "again.toml", "/", test_schema()) == r);
  EXPECT_EQ(error("[model]\npath = \"model\"\n[data]\nweights = { q = \"x\" }\n"),
            "data.weights.q must be a number, got string \"x\" (recipe.toml:4)");
  EXPECT_EQ(error(kMinimal, {"data.weights.q=x"}), "data.weights.q must be a number, got string \"x\" "
                                                    "(override data.weights.q=x)");
}

TEST_F(RecipeTest, OverrideOfANewKeyIsRejectedWithASuggestion) {
  EXPECT_EQ(error(kMinimal, {"data.max_lenght=5"}),
            "unknown key \"data.max_lenght\" (override data.max_lenght=5); did you mean \"data.max_length\"?");
  EXPECT_EQ(error(kMinimal, {"trainig.epochs=5"}),
            "unknown key \"trainig.epochs\" (override trainig.epochs=5); did you mean \"training.epochs\"?");
}

TEST_F(RecipeTest, OverrideValuesAreValidatedAndNameTheOverride) {
  EXPECT_EQ(error(kMinimal, {"data.max_length=abc"}),
            "data.max_length must be an integer, got string \"abc\" (override data.max_length=abc)");
  EXPECT_EQ(error(kMinimal, {"data.max_length=0"}),
            "data.max_length must be between 1 and 8192, got 0 (override data.max_length=0)");
  EXPECT_EQ(error(kMinimal, {"data.format=csv"}),
            "data.format must be one of \"alpaca\", \"sharegpt\", \"messages\", got \"csv\" "
            "(override data.format=csv)");
  EXPECT_EQ(error(kMinimal, {"data.paths=a.jsonl"}),
            "data.paths must be a list of paths (strings), got string \"a.jsonl\" (override data.paths=a.jsonl); "
            "write it as a TOML list: 'data.paths=[\"a.jsonl\"]'");
  EXPECT_EQ(error(kMinimal, {"model.path=nope"}),
            "model.path: \"" + (fs::current_path() / "nope").string() + "\" does not exist (override model.path=nope)");
}

TEST_F(RecipeTest, MalformedOverride) {
  for (std::string bad : {"data.max_length", "max_length=5", "=5", ".x=1", "data..x=1", "data.max length=1"})
    EXPECT_EQ(error(kMinimal, {bad}), "override \"" + bad + "\" needs the form section.key=value");
}

TEST_F(RecipeTest, OverrideThatLooksLikeBrokenTomlIsAnError) {
  std::string message = error(kMinimal, {"data.tags=[\"a\""});
  EXPECT_EQ(message.rfind("override \"data.tags=[\"a\"\": the value is not valid TOML: ", 0), 0u) << message;
  // Text that smuggles a second key is not one value: it is taken as a string.
  EXPECT_EQ(parse(kMinimal, {"data.name=1\nother = 2"}).get_string("data.name"), "1\nother = 2");
}

TEST_F(RecipeTest, OverrideCanRepairABadFileValue) {
  EXPECT_EQ(parse("[model]\npath = \"nope\"\n", {"model.path=" + path("model")}).get_string("model.path"),
            path("model"));
}

// ---- resolved TOML and canonical text --------------------------------------

TEST_F(RecipeTest, ResolvedTomlLoadsBackEqual) {
  Recipe r = parse(R"([model]
path = "model"
[data]
paths = ["a.jsonl"]
fields = { "odd key" = "tab\there", "q\"uote" = "naïve \\ back" }
tags = []
name = "line\nbreak \u0001"
[optimizer]
lr = 0.1
[schedule]
warmup_ratio = 1
)",
                   {"training.epochs=3", "logging.run_name=2024"});
  std::string text = r.resolved_toml();
  Recipe again = Recipe::from_string(text, "resolved.toml", "/elsewhere", test_schema());
  EXPECT_TRUE(again == r) << text;
  // Resolving a resolved recipe changes nothing but the origin comments.
  EXPECT_TRUE(Recipe::from_string(again.resolved_toml(), "again.toml", "/", test_schema()) == r);
  // An unset optional key stays unset; floats stay floats.
  Recipe minimal = parse(kMinimal);
  Recipe minimal_again = Recipe::from_string(minimal.resolved_toml(), "r.toml", "/", test_schema());
  EXPECT_TRUE(minimal_again == minimal);
  EXPECT_FALSE(minimal_again.has("data.name"));
  EXPECT_FALSE(minimal == r);
}

TEST_F(RecipeTest, NestedSectionsWorkAndRoundTrip) {
  RecipeSchema schema = {
      {.key = "model.lora.rank", .type = KeyType::kInt, .default_value = 8, .help = "adapter rank"},
      {.key = "model.name", .type = KeyType::kString, .default_value = "2b"},
      {.key = "model.lora.targets", .type = KeyType::kStringList, .default_value = StringList{"q_proj"}},
  };
  Recipe r = Recipe::from_string("[model.lora]\nrank = 16\n", "r.toml", "/", schema, {"model.lora.targets=[]"});
  EXPECT_EQ(r.get_int("model.lora.rank"), 16);
  EXPECT_TRUE(r.get_list("model.lora.targets").empty());
  EXPECT_TRUE(Recipe::from_string(r.resolved_toml(), "again.toml", "/", schema) == r) << r.resolved_toml();
  EXPECT_EQ(error_of([&] { Recipe::from_string("[model.lora]\nrnak = 1\n", "r.toml", "/", schema); }),
            "unknown key \"model.lora.rnak\" (r.toml:2); did you mean \"model.lora.rank\"?");
}

TEST_F(RecipeTest, ResolvedTomlShowsSectionsInSchemaOrderWithHelp) {
  std::string text = parse(kMinimal, {"training.epochs=2"}).resolved_toml();
  size_t model = text.find("[model]"), data = text.find("[data]"), logging = text.find("[logging]");
  ASSERT_NE(model, std::string::npos);
  EXPECT_LT(model, data);
  EXPECT_LT(data, logging);
  EXPECT_NE(text.find("# tokens per sequence\nmax_length = 2048  # default\n"), std::string::npos) << text;
  EXPECT_NE(text.find("epochs = 2  # override\n"), std::string::npos) << text;
  EXPECT_NE(text.find("warmup_ratio = 0.0  # default\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lr = 2e-05  # default\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# name is not set (optional)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("path = \"" + path("model") + "\"\n"), std::string::npos) << text;
}

TEST_F(RecipeTest, CanonicalIsStableAcrossFormattingAndOrigin) {
  Recipe a = parse("[model]\npath = \"model\"\n[data]\nmax_length = 100\nformat = \"sharegpt\"\n");
  Recipe b = parse("# a comment\ndata.format = 'sharegpt'\nmodel.path = \"./model\"\n", {"data.max_length=100"});
  EXPECT_EQ(a.canonical({"data"}), b.canonical({"data"}));
  EXPECT_EQ(a.canonical({"data", "model"}), b.canonical({"model", "data"}));
  // Sorted by key, one per line, values as TOML.
  EXPECT_EQ(a.canonical({"data.max_length", "data.format"}), "data.format = \"sharegpt\"\ndata.max_length = 100\n");
  EXPECT_EQ(a.canonical({"data.name"}), "data.name unset\n");
}

// The digests come from the keys' own flags: kCache keys enter the cache
// key, kResults keys (and kCache ones) the run's; the rest neither.
TEST_F(RecipeTest, CanonicalByEffectTakesTheFlaggedKeys) {
  Recipe base = parse(kMinimal);
  EXPECT_EQ(base.canonical(KeyEffect::kCache), "data.max_length = 2048\n");
  EXPECT_EQ(base.canonical(KeyEffect::kResults), "data.max_length = 2048\noptimizer.lr = 2e-05\n");
  EXPECT_NE(base.canonical(KeyEffect::kCache), parse(kMinimal, {"data.max_length=99"}).canonical(KeyEffect::kCache));
  EXPECT_EQ(base.canonical(KeyEffect::kCache), parse(kMinimal, {"optimizer.lr=0.1"}).canonical(KeyEffect::kCache));
  EXPECT_NE(base.canonical(KeyEffect::kResults), parse(kMinimal, {"optimizer.lr=0.1"}).canonical(KeyEffect::kResults));
  EXPECT_EQ(base.canonical(KeyEffect::kResults), parse(kMinimal, {"training.epochs=3"}).canonical(KeyEffect::kResults));
}

TEST_F(RecipeTest, CanonicalChangesWithAnyCoveredValueOnly) {
  Recipe base = parse(kMinimal);
  EXPECT_NE(base.canonical({"data"}), parse(kMinimal, {"data.max_length=2047"}).canonical({"data"}));
  EXPECT_NE(base.canonical({"data"}), parse(kMinimal, {"data.name=x"}).canonical({"data"}));
  EXPECT_NE(base.canonical({"data"}), parse(kMinimal, {"data.fields.prompt=x"}).canonical({"data"}));
  EXPECT_EQ(base.canonical({"data"}), parse(kMinimal, {"training.epochs=9"}).canonical({"data"}));
  // A prefix covers whole parts: "data.max" is not a prefix of data.max_length.
  EXPECT_EQ(base.canonical({"data.max"}), "");
  EXPECT_EQ(base.canonical({"dat"}), "");
  EXPECT_NE(base.canonical({""}).find("training.epochs = 1\n"), std::string::npos);
}

// ---- schema handling and internal errors -----------------------------------

TEST_F(RecipeTest, GettersCheckTheSchemaAndType) {
  Recipe r = parse(kMinimal);
  auto internal = [&](const std::function<void()>& f) {
    return internal_error_of(f).rfind("internal error", 0) == 0;
  };
  EXPECT_TRUE(internal([&] { r.get_int("data.max_lenght"); }));
  EXPECT_TRUE(internal([&] { r.get_string("data.max_length"); }));
  EXPECT_TRUE(internal([&] { r.get_float("data.max_length"); }));
  EXPECT_TRUE(internal([&] { r.get_string("data.name"); }));  // optional and unset
  EXPECT_TRUE(internal([&] { r.has("nope.nope"); }));
}

TEST_F(RecipeTest, MergeSchemasKeepsOrderAndRejectsDuplicates) {
  RecipeSchema a = {{.key = "a.x", .type = KeyType::kInt, .default_value = 1}};
  RecipeSchema b = {{.key = "b.y", .type = KeyType::kBool, .default_value = false}};
  RecipeSchema merged = merge_schemas({a, b});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].key, "a.x");
  EXPECT_EQ(merged[1].key, "b.y");
  EXPECT_EQ(error_of([&] { merge_schemas({a, b, a}); }), "recipe key \"a.x\" is declared by two merged schemas");
}

TEST_F(RecipeTest, BadSchemasAreInternalErrors) {
  auto bad = [&](RecipeSchema schema) {
    return internal_error_of([&] { Recipe::from_string("", "r", "/", schema); }).rfind("internal error", 0) == 0;
  };
  EXPECT_TRUE(bad({{.key = "nosection", .type = KeyType::kInt, .default_value = 1}}));
  EXPECT_TRUE(bad({{.key = "a.x", .type = KeyType::kInt, .default_value = "one"}}));
  EXPECT_TRUE(bad({{.key = "a.x", .type = KeyType::kInt, .default_value = 0, .min = 1}}));
  EXPECT_TRUE(bad({{.key = "a.x", .type = KeyType::kString, .default_value = "c", .choices = {"a", "b"}}}));
  EXPECT_TRUE(bad({{.key = "a.x", .type = KeyType::kInt, .default_value = 1},
                   {.key = "a.x.y", .type = KeyType::kInt, .default_value = 1}}));
  EXPECT_FALSE(bad({{.key = "a.x", .type = KeyType::kString, .default_value = "b", .choices = {"a", "b"}}}));
}

TEST_F(RecipeTest, DescribeSchemaListsEveryKey) {
  std::string text = describe_schema(test_schema());
  EXPECT_NE(text.find("data.max_length: an integer, 1 to 8192; default 2048\n    tokens per sequence\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("data.format: a string, one of alpaca, sharegpt, messages; default \"alpaca\"\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("model.path: a path (string), must exist; required\n"), std::string::npos) << text;
  EXPECT_NE(text.find("data.name: a string; optional\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace st

// ST_CHECK reports our bugs with st::InternalError, which no handler of user
// errors (st::Error: data.skip_invalid, main's exit 1, expect_error) catches.
TEST(ErrorTypes, InternalErrorsAreOutsideTheUserErrorHierarchy) {
  static_assert(!std::is_base_of_v<st::Error, st::InternalError>);
  bool caught_as_user_error = false;
  std::string message;
  try {
    try {
      ST_CHECK(1 + 1 == 3, "arithmetic");
    } catch (const st::Error&) {
      caught_as_user_error = true;
    }
  } catch (const st::InternalError& e) {
    message = e.what();
  }
  EXPECT_FALSE(caught_as_user_error);
  EXPECT_EQ(message.rfind("internal error at ", 0), 0u) << message;
  EXPECT_NE(message.find("1 + 1 == 3 failed. arithmetic"), std::string::npos) << message;
}
