// How much memory this process holds now (its resident set, from
// /proc/self/statm): logged per step, so that a run's memory is seen where
// its speed is (fully sharded runs hold 1/N of the state).
#pragma once

#include <cstdint>

namespace st {

/// The resident set in bytes, or -1 where /proc is not there.
int64_t resident_memory_bytes();

}  // namespace st
