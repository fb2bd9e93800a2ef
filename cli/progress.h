// Progress of long work on stderr, for the commands that do it (prepare's
// encoding, export's and merge's writing).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace st::cli {

using Progress = std::function<void(uint64_t done, uint64_t total)>;

/// "WHAT: done/total UNIT, rate UNIT/s, ETA s": updated in place ("\r") on
/// a terminal, else a line every 5 s and one at the end. Counts are shown
/// divided by `unit_size` (1 for samples, 1e6 for MB) with `decimals`
/// decimals. A total of 0 means none is known: no ETA.
Progress progress_printer(const std::string& what, const std::string& unit, double unit_size = 1, int decimals = 0);

}  // namespace st::cli
