// A small command-line parser: each option is defined once, with its help
// text, and the same definition parses and documents it. --help prints the
// usage and exits 0; any mistake throws st::UsageError (exit code 2).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace st::cli {

/// The options and positionals of one subcommand.
class Args {
 public:
  Args(std::string command, std::string summary);

  /// --name VALUE into *target; its current value is the default shown.
  void option(const std::string& name, const std::string& metavar, const std::string& help, std::string* target,
              bool required = false);
  void option(const std::string& name, const std::string& metavar, const std::string& help, int64_t* target);
  void option(const std::string& name, const std::string& metavar, const std::string& help, double* target);
  /// Optional numbers: left empty unless given, so a caller can fall back
  /// to another source of defaults (e.g. generation_config.json).
  void option(const std::string& name, const std::string& metavar, const std::string& help,
              std::optional<int64_t>* target);
  void option(const std::string& name, const std::string& metavar, const std::string& help,
              std::optional<double>* target);
  /// --name sets *target to true.
  void flag(const std::string& name, const std::string& help, bool* target);
  /// --name VALUE may repeat; every value is appended.
  void repeated(const std::string& name, const std::string& metavar, const std::string& help,
                std::vector<std::string>* target);

  /// A required positional argument (in the order declared).
  void positional(const std::string& metavar, const std::string& help, std::string* target);
  /// All remaining positionals (after the declared ones), e.g. recipe overrides.
  void rest(const std::string& metavar, const std::string& help, std::vector<std::string>* target);

  /// Text printed after the options in --help.
  void epilog(std::string text) { epilog_ = std::move(text); }

  /// Parses argv after the subcommand name. Returns false when --help was
  /// asked for (usage already printed).
  bool parse(int argc, char** argv);
  /// The usage text.
  std::string usage() const;

 private:
  struct Option {
    std::string name, metavar, help, default_text;
    bool takes_value = true, required = false, seen = false;
    std::function<void(const std::string&)> set;
  };
  Option& add(const std::string& name, const std::string& metavar, const std::string& help);
  struct Positional {
    std::string metavar, help;
    std::string* target;
  };
  std::string command_, summary_;
  std::vector<Option> options_;
  std::vector<Positional> positionals_;
  std::string rest_metavar_, rest_help_, epilog_;
  std::vector<std::string>* rest_ = nullptr;
};

}  // namespace st::cli
