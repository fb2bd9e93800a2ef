#include "common/writeback.h"

#include <fcntl.h>

namespace st {

void Writeback::appended(uint64_t end, const std::function<void()>& flush) {
  if (end < from_ + kChunkBytes) return;
  flush();
  if (!worker_) worker_ = std::make_unique<SerialWorker>();
  const int fd = fd_;
  const auto offset = static_cast<off64_t>(from_), bytes = static_cast<off64_t>(end - from_);
  worker_->post([fd, offset, bytes] { ::sync_file_range(fd, offset, bytes, SYNC_FILE_RANGE_WRITE); });
  from_ = end;
}

}  // namespace st
