#include "cli/args.h"

#include <cstdio>
#include <sstream>
#include <type_traits>

#include "common/error.h"

namespace st::cli {

Args::Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

Args::Option& Args::add(const std::string& name, const std::string& metavar, const std::string& help) {
  options_.push_back(Option{name, metavar, help, "", true, false, false, {}});
  return options_.back();
}

void Args::option(const std::string& name, const std::string& metavar, const std::string& help, std::string* target,
                  bool required) {
  Option& o = add(name, metavar, help);
  o.required = required;
  o.default_text = *target;
  o.set = [target](const std::string& v) { *target = v; };
}

namespace {

// Parses the whole of `text` as a number of type T; usage error otherwise.
template <typename T>
T parse_number(const std::string& name, const std::string& text) {
  size_t used = 0;
  T value{};
  try {
    if constexpr (std::is_integral_v<T>) value = std::stoll(text, &used);
    else value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw UsageError(cat("--", name, std::is_integral_v<T> ? " expects an integer" : " expects a number", ", got \"",
                         text, "\""));
  return value;
}

template <typename T>
std::string show(const T& value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace

void Args::option(const std::string& name, const std::string& metavar, const std::string& help, int64_t* target) {
  Option& o = add(name, metavar, help);
  o.default_text = show(*target);
  o.set = [target, name](const std::string& v) { *target = parse_number<int64_t>(name, v); };
}

void Args::option(const std::string& name, const std::string& metavar, const std::string& help, double* target) {
  Option& o = add(name, metavar, help);
  o.default_text = show(*target);
  o.set = [target, name](const std::string& v) { *target = parse_number<double>(name, v); };
}

void Args::option(const std::string& name, const std::string& metavar, const std::string& help,
                  std::optional<int64_t>* target) {
  add(name, metavar, help).set = [target, name](const std::string& v) { *target = parse_number<int64_t>(name, v); };
}

void Args::option(const std::string& name, const std::string& metavar, const std::string& help,
                  std::optional<double>* target) {
  add(name, metavar, help).set = [target, name](const std::string& v) { *target = parse_number<double>(name, v); };
}

void Args::flag(const std::string& name, const std::string& help, bool* target) {
  Option& o = add(name, "", help);
  o.takes_value = false;
  o.set = [target](const std::string&) { *target = true; };
}

void Args::repeated(const std::string& name, const std::string& metavar, const std::string& help,
                    std::vector<std::string>* target) {
  Option& o = add(name, metavar, help + " (repeatable)");
  o.set = [target](const std::string& v) { target->push_back(v); };
}

void Args::positional(const std::string& metavar, const std::string& help, std::string* target) {
  positionals_.push_back({metavar, help, target});
}

void Args::rest(const std::string& metavar, const std::string& help, std::vector<std::string>* target) {
  rest_metavar_ = metavar;
  rest_help_ = help;
  rest_ = target;
}

bool Args::parse(int argc, char** argv) {
  size_t positionals_seen = 0;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      return false;
    }
    if (arg.rfind("--", 0) != 0) {
      if (positionals_seen < positionals_.size()) {
        *positionals_[positionals_seen++].target = arg;
        continue;
      }
      if (rest_) {
        rest_->push_back(arg);
        continue;
      }
      throw UsageError(cat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    Option* found = nullptr;
    for (auto& o : options_)
      if (o.name == name) found = &o;
    if (!found) throw UsageError(cat("unknown option --", name));
    if (found->takes_value && !inline_value) {
      if (i + 1 >= argc) throw UsageError(cat("--", name, " needs a value (", found->metavar, ")"));
      value = argv[++i];
    } else if (!found->takes_value && inline_value) {
      throw UsageError(cat("--", name, " takes no value"));
    }
    found->set(value);
    found->seen = true;
  }
  for (auto& o : options_)
    if (o.required && !o.seen) throw UsageError(cat("missing required option --", o.name));
  if (positionals_seen < positionals_.size())
    throw UsageError(cat("missing ", positionals_[positionals_seen].metavar));
  return true;
}

std::string Args::usage() const {
  std::ostringstream out;
  out << "usage: salamandra-tune " << command_;
  for (const auto& p : positionals_) out << " " << p.metavar;
  if (rest_) out << " [" << rest_metavar_ << " ...]";
  out << " [options]\n\n" << summary_ << "\n\n";
  if (!positionals_.empty() || rest_) {
    out << "arguments:\n";
    for (const auto& p : positionals_)
      out << "  " << p.metavar << std::string(p.metavar.size() < 28 ? 28 - p.metavar.size() : 1, ' ') << p.help << "\n";
    if (rest_)
      out << "  " << rest_metavar_ << std::string(rest_metavar_.size() < 28 ? 28 - rest_metavar_.size() : 1, ' ')
          << rest_help_ << "\n";
    out << "\n";
  }
  out << "options:\n";
  for (const auto& o : options_) {
    std::string left = "  --" + o.name + (o.takes_value ? " " + o.metavar : "");
    out << left;
    out << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << o.help;
    if (o.required) out << " (required)";
    else if (o.takes_value && !o.default_text.empty()) out << " [default: " << o.default_text << "]";
    out << "\n";
  }
  out << "  --help                      show this help\n";
  if (!epilog_.empty()) out << "\n" << epilog_;
  return out.str();
}

}  // namespace st::cli
