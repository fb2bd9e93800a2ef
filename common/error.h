// Errors and invariant checks shared by every library.
//
// Two kinds of failure exist and they are reported differently:
//  - st::Error: the user gave us something wrong (a file, a key, an argument).
//    The message names the file/line/key/tensor and says what was expected.
//    Only main() catches it; it exits non-zero with the message.
//  - ST_CHECK: an internal invariant of ours broke. It throws
//    st::InternalError, which is deliberately outside the st::Error
//    hierarchy: code that tolerates bad input (data.skip_invalid, a test
//    expecting a user error) catches st::Error and so never mistakes one of
//    our bugs for a bad sample. It reports file:line so a developer can find
//    it; main() says it is a bug and exits 70 (EX_SOFTWARE).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace st {

/// A user-facing error: bad input, bad arguments, missing files.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A command-line usage error: main() prints the usage and exits with code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// An internal invariant failed (ST_CHECK): a bug in salamandra-tune, never
/// the user's input. Not an st::Error, so nothing that handles user errors
/// catches it.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Builds a message from streamable parts: st::cat("tensor ", name, " has ", n).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// Throws st::Error with the concatenated message.
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat(parts...));
}

}  // namespace st

/// Internal invariant: on failure reports where in our code it broke.
#define ST_CHECK(cond, ...)                                                          \
  do {                                                                               \
    if (!(cond))                                                                     \
      throw ::st::InternalError(::st::cat("internal error at ", __FILE__, ":",       \
                                          __LINE__, ": ", #cond, " failed. ",        \
                                          ##__VA_ARGS__));                           \
  } while (0)
