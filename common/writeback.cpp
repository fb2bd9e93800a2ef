#include "common/writeback.h"

#include <fcntl.h>

namespace st {

void Writeback::start(uint64_t offset, uint64_t bytes) {
  const int fd = fd_;
  worker_.post([fd, offset, bytes] {
    ::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(bytes), SYNC_FILE_RANGE_WRITE);
  });
}

}  // namespace st
