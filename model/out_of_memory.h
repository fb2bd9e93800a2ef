// Running out of memory is a user-facing condition (the batch, the model or
// max_length is too big for this machine), not a crash: an allocation that
// fails deep inside LibTorch says only how many bytes it wanted, so the
// places that allocate the big things (the model's weights, a training
// step, an evaluation) run under guard_allocation, which turns the failure
// into an st::Error that says what was being allocated, how big, and which
// settings lower it. main() gives any other allocation failure (generate,
// score) its size the same way.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "common/error.h"

namespace st {

/// When `failure` is an allocation failure (LibTorch's CPU allocator,
/// c10::OutOfMemoryError from CUDA's, std::bad_alloc), what to tell the
/// user instead: "out of memory while allocating <what>: tried to allocate
/// 3.7 TiB. <advice>". Otherwise nullopt (the original stands).
std::optional<std::string> out_of_memory_message(const std::exception_ptr& failure, const std::string& what,
                                                 const std::string& advice);

/// Runs `body`; an allocation failure inside it becomes an st::Error with
/// the message above.
template <typename Body>
decltype(auto) guard_allocation(const std::string& what, const std::string& advice, Body&& body) {
  try {
    return std::forward<Body>(body)();
  } catch (...) {
    if (auto message = out_of_memory_message(std::current_exception(), what, advice)) throw Error(*message);
    throw;
  }
}

/// "3.7 TiB", "512.0 MiB": sizes in messages.
std::string format_bytes(double bytes);

}  // namespace st
