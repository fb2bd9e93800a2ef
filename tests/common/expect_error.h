// Checks that a call refuses its input with an st::Error whose message names
// what was wrong (the project's rule for bad input).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "common/error.h"

namespace st::test {

/// Runs `fn`, expects st::Error whose message holds every one of `parts`;
/// a call that throws nothing fails the test, and so does an internal error
/// (ST_CHECK's st::InternalError is not an st::Error, so it escapes).
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
    return;
  }
  ADD_FAILURE() << "no st::Error thrown";
}

}  // namespace st::test
