// MappedFile over a file still being written (export's read-back checks
// each tensor while the next ones are written): mapped at the size the
// file will reach, it shows bytes as they are written, and released pages
// read again from the page cache.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/mapped_file.h"
#include "tests/common/expect_error.h"
#include "tests/common/fresh_test_dir.h"

namespace st {
namespace {
namespace fs = std::filesystem;

TEST(MappedFile, MappedAtItsFinalSizeShowsBytesAsTheyAreWritten) {
  const fs::path dir = test::fresh_test_dir("st_mapped_file");
  const std::string path = (dir / "growing").string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE)), size = 3 * page + 5;
  std::vector<char> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7 + 1);
  ASSERT_EQ(::write(fd, bytes.data(), 10), 10);
  const MappedFile mapped(path, size);
  EXPECT_EQ(mapped.size(), size);
  EXPECT_EQ(std::memcmp(mapped.data(), bytes.data(), 10), 0);
  // The rest comes after the mapping was made, across pages.
  ASSERT_EQ(::write(fd, bytes.data() + 10, size - 10), static_cast<ssize_t>(size - 10));
  ::close(fd);
  mapped.populate(page - 3, 2 * page);
  EXPECT_EQ(std::memcmp(mapped.data(), bytes.data(), size), 0);
  // Released pages still read the file's bytes.
  mapped.release(0, size);
  EXPECT_EQ(std::memcmp(mapped.data(), bytes.data(), size), 0);
  // Mapped whole, it takes the file's size.
  EXPECT_EQ(MappedFile(path).size(), size);
  test::expect_error([&] { MappedFile((dir / "missing").string(), 10); }, {"cannot open", "missing"});
}

}  // namespace
}  // namespace st
