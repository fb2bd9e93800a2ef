#include "kernels/fused_switch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace st {
namespace {

// -1: no override; 0 / 1: every kernel off / on.
std::atomic<int> forced{-1};

// The variable's "1" or "0"; unset or empty: no answer; anything else is an error.
std::optional<bool> read_flag(const char* variable) {
  const char* value = std::getenv(variable);
  if (!value || !*value) return std::nullopt;
  if (std::strcmp(value, "1") == 0) return true;
  if (std::strcmp(value, "0") == 0) return false;
  fail("environment variable ", variable, "=", value, ": expected 1 (on) or 0 (off)");
}

}  // namespace

FusedSwitch::FusedSwitch(const char* per_op_variable, bool default_on) {
  if (auto op = read_flag(per_op_variable))
    from_environment_ = *op;
  else if (auto all = read_flag("ST_FUSED_KERNELS"))
    from_environment_ = *all;
  else
    from_environment_ = default_on;
}

bool FusedSwitch::enabled() const {
#ifdef ST_WITH_CUDA
  const int state = forced.load(std::memory_order_relaxed);
  return state < 0 ? from_environment_ : state == 1;
#else
  return false;
#endif
}

void override_fused_kernels(std::optional<bool> state) { forced.store(state ? int(*state) : -1); }

}  // namespace st
