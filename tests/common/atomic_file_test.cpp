// AtomicFile past its writeback threshold (common/writeback.h starts the
// disk writes of every 64 MiB appended, on another thread): written and
// kernel-copied pieces land at the right offsets, nothing is visible before
// commit, an uncommitted file leaves nothing behind; a deferred commit
// renames without fsync, and sync_file names a file it cannot flush.
// kernel_copy in pieces says where each one ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/common/expect_error.h"
#include "tests/common/fresh_test_dir.h"

namespace st {
namespace {
namespace fs = std::filesystem;

// Bytes that differ from their neighbours at every offset a misplaced piece
// could land on.
std::vector<uint8_t> pattern(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> out(bytes);
  uint32_t x = seed;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

constexpr size_t kMiB = 1 << 20;

TEST(AtomicFile, PiecesWrittenAndCopiedPastTheWritebackThresholdLandInOrder) {
  const fs::path dir = test::fresh_test_dir("st_atomic_file");
  const std::vector<uint8_t> source = pattern(90 * kMiB, 1);
  write_file_atomic((dir / "source").string(),
                    std::string_view(reinterpret_cast<const char*>(source.data()), source.size()));
  const int source_fd = ::open((dir / "source").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(source_fd, 0);

  const std::vector<uint8_t> written = pattern(50 * kMiB + 3, 2);
  std::vector<uint8_t> expected;
  const std::string out = (dir / "out").string();
  {
    AtomicFile file(out);
    // 50 MiB written, 70 MiB copied (the threshold passed mid-copy), 3 bytes,
    // 20 MiB copied from an odd offset, 50 MiB written in two pieces: past
    // the threshold three times, at offsets that are not page multiples.
    file.write(written.data(), 25 * kMiB);
    file.write(written.data() + 25 * kMiB, 25 * kMiB);
    expected.insert(expected.end(), written.begin(), written.begin() + 50 * kMiB);
    ASSERT_TRUE(file.append_copy(source_fd, 0, 70 * kMiB));
    expected.insert(expected.end(), source.begin(), source.begin() + 70 * kMiB);
    file.write(written.data() + 50 * kMiB, 3);
    expected.insert(expected.end(), written.end() - 3, written.end());
    ASSERT_TRUE(file.append_copy(source_fd, 70 * kMiB - 7, 20 * kMiB));
    expected.insert(expected.end(), source.begin() + 70 * kMiB - 7, source.begin() + 90 * kMiB - 7);
    file.write(written.data(), 50 * kMiB);
    expected.insert(expected.end(), written.begin(), written.begin() + 50 * kMiB);
    EXPECT_FALSE(fs::exists(out)) << "visible before commit";
    file.commit();
  }
  ::close(source_fd);
  const std::string back = read_file(out);
  ASSERT_EQ(back.size(), expected.size());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), reinterpret_cast<const uint8_t*>(back.data())));
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_TRUE(entry.path().filename() == "source" || entry.path().filename() == "out") << entry.path();
}

TEST(KernelCopy, InPiecesReportsWhereEachPieceEnds) {
  const fs::path dir = test::fresh_test_dir("st_atomic_file");
  const std::vector<uint8_t> source = pattern(10 * kMiB + 8, 5);
  write_file_atomic((dir / "source").string(),
                    std::string_view(reinterpret_cast<const char*>(source.data()), source.size()));
  const int from = ::open((dir / "source").c_str(), O_RDONLY | O_CLOEXEC);
  const int to = ::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(from, 0);
  ASSERT_GE(to, 0);
  ASSERT_EQ(::pwrite(to, "head", 4, 0), 4);
  // 10 MiB + 5 from offset 3, to offset 11, in pieces of at most 4 MiB.
  std::vector<uint64_t> ends;
  ASSERT_TRUE(kernel_copy(from, 3, to, 11, 10 * kMiB + 5, (dir / "out").string(), 4 * kMiB,
                          [&](uint64_t end) { ends.push_back(end); }));
  ::close(from);
  ::close(to);
  // The kernel may copy less than asked: each end lies past the one before
  // and at most a piece further, and the last is where the bytes end.
  ASSERT_FALSE(ends.empty());
  uint64_t before = 11;
  for (uint64_t end : ends) {
    EXPECT_GT(end, before);
    EXPECT_LE(end - before, 4 * kMiB);
    before = end;
  }
  EXPECT_EQ(ends.back(), 11 + 10 * kMiB + 5);
  EXPECT_GE(ends.size(), 3u);
  const std::string back = read_file((dir / "out").string());
  ASSERT_EQ(back.size(), 11 + 10 * kMiB + 5);
  EXPECT_EQ(back.substr(0, 4), "head");
  EXPECT_EQ(std::memcmp(back.data() + 11, source.data() + 3, 10 * kMiB + 5), 0);
}

TEST(AtomicFile, AnUncommittedFileWithWritesUnderWayLeavesNothing) {
  const fs::path dir = test::fresh_test_dir("st_atomic_file");
  const std::vector<uint8_t> bytes = pattern(200 * kMiB, 3);
  {
    AtomicFile file((dir / "out").string());
    for (size_t at = 0; at < bytes.size(); at += 40 * kMiB) file.write(bytes.data() + at, 40 * kMiB);
  }
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(AtomicFile, ADeferredCommitIsVisibleAndSyncedLater) {
  const fs::path dir = test::fresh_test_dir("st_atomic_file");
  const std::string out = (dir / "out").string();
  const std::vector<uint8_t> bytes = pattern(70 * kMiB, 4);
  AtomicFile file(out);
  file.write(bytes.data(), bytes.size());
  file.commit(Durability::deferred);
  const std::string back = read_file(out);
  ASSERT_EQ(back.size(), bytes.size());
  EXPECT_EQ(std::memcmp(back.data(), bytes.data(), bytes.size()), 0);
  sync_file(out);
  test::expect_error([&] { sync_file((dir / "missing").string()); }, {"cannot open", "missing"});
}

}  // namespace
}  // namespace st
