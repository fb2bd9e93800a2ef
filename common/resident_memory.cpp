#include "common/resident_memory.h"

#include <unistd.h>

#include <cstdio>

namespace st {

int64_t resident_memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = 0;  // in pages: total, resident
  const bool read = std::fscanf(f, "%lld %lld", &size, &resident) == 2;
  std::fclose(f);
  return read ? resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE)) : -1;
}

}  // namespace st
