#include "model/out_of_memory.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <new>
#include <regex>

#include "common/error.h"

namespace st {
namespace {

// The size a LibTorch allocator message states: the CPU allocator's "you
// tried to allocate 4000000000000 bytes", CUDA's "Tried to allocate 20.00 GiB".
std::string requested_size(const std::string& message) {
  std::smatch match;
  if (std::regex_search(message, match, std::regex("allocate ([0-9]+) bytes")))
    return format_bytes(std::stod(match[1].str()));
  if (std::regex_search(message, match, std::regex("[Tt]ried to allocate ([0-9.]+ [KMGT]?i?B)"))) return match[1];
  return "";
}

bool is_allocator_failure(const c10::Error& e) {
  const std::string message = e.what_without_backtrace();
  return message.find("DefaultCPUAllocator") != std::string::npos ||
         message.find("out of memory") != std::string::npos;
}

}  // namespace

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 5) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

std::optional<std::string> out_of_memory_message(const std::exception_ptr& failure, const std::string& what,
                                                 const std::string& advice) {
  std::string size;
  try {
    std::rethrow_exception(failure);
  } catch (const c10::OutOfMemoryError& e) {
    size = requested_size(e.what_without_backtrace());
  } catch (const c10::Error& e) {
    if (!is_allocator_failure(e)) return std::nullopt;
    size = requested_size(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
  } catch (...) {
    return std::nullopt;
  }
  return cat("out of memory while allocating ", what, size.empty() ? "" : ": tried to allocate " + size, ".",
             advice.empty() ? "" : " " + advice);
}

}  // namespace st
