#include "cli/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace st::cli {

Progress progress_printer(const std::string& what, const std::string& unit, double unit_size, int decimals) {
  const bool tty = ::isatty(STDERR_FILENO);
  auto start = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  auto last = std::make_shared<double>(0.0);
  return [=](uint64_t done, uint64_t total) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - *start).count();
    if (!tty && done != total && elapsed - *last < 5) return;
    *last = elapsed;
    const double shown = double(done) / unit_size;
    const double rate = elapsed > 0 ? shown / elapsed : 0;
    if (total == 0) {  // streaming: no total to count down from
      std::fprintf(stderr, "%s%s: %.*f %s, %.0f %s/s%s", tty ? "\r" : "", what.c_str(), decimals, shown, unit.c_str(),
                   rate, unit.c_str(), tty ? "   " : "\n");
    } else {
      const double eta = rate > 0 ? (double(total) / unit_size - shown) / rate : 0;
      std::fprintf(stderr, "%s%s: %.*f/%.*f %s, %.0f %s/s, ETA %.0f s%s", tty ? "\r" : "", what.c_str(), decimals,
                   shown, decimals, double(total) / unit_size, unit.c_str(), rate, unit.c_str(), eta,
                   tty && done != total ? "   " : "\n");
    }
    std::fflush(stderr);
  };
}

}  // namespace st::cli
