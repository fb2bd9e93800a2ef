// GGUF files: what the writer writes reads back (metadata of every type,
// shapes in both orders, aligned offsets), q8_0 follows ggml's reference
// rounding, and damaged files are refused with the file and the problem named.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include "common/error.h"
#include "tests/export/gguf_values.h"

namespace fs = std::filesystem;
using namespace st;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("gguf_file_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufFile, WhatIsWrittenReadsBack) {
  const std::string path = temp_path("sample.gguf");
  gguf_test::write_sample(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const gguf::File file = gguf::read(path);
  EXPECT_EQ(file.version, 3u);
  EXPECT_EQ(std::get<std::string>(*file.metadata.find("general.name")), "sample ñ");
  EXPECT_EQ(std::get<uint32_t>(*file.metadata.find("test.u32")), 7u);
  EXPECT_EQ(std::get<int32_t>(*file.metadata.find("test.i32")), -3);
  EXPECT_EQ(std::get<uint64_t>(*file.metadata.find("test.u64")), uint64_t{1} << 40);
  EXPECT_EQ(std::get<float>(*file.metadata.find("test.f32")), 0.25f);
  EXPECT_TRUE(std::get<bool>(*file.metadata.find("test.bool")));
  EXPECT_EQ(std::get<std::vector<std::string>>(*file.metadata.find("test.strings")),
            (std::vector<std::string>{"<s>", "▁hola", ""}));
  EXPECT_EQ(std::get<std::vector<float>>(*file.metadata.find("test.floats")), (std::vector<float>{-1.5f, 0, 2}));
  EXPECT_EQ(std::get<std::vector<int32_t>>(*file.metadata.find("test.ints")), (std::vector<int32_t>{1, 6, 3}));
  ASSERT_EQ(file.tensors.size(), 3u);
  EXPECT_EQ(file.tensors[0].shape, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(file.tensors[1].shape, (std::vector<uint64_t>{2, 64}));
  EXPECT_EQ(file.tensors[1].type, gguf::TensorType::kQ8_0);
  for (const auto& t : file.tensors) EXPECT_EQ((file.data_start + t.offset) % 32, 0u) << t.name;
  EXPECT_EQ(gguf::read_tensor(path, file, file.tensors[0]), gguf_test::bytes_of(gguf_test::ramp(15)));
  // q8_0 dequantizes to within half a step d = max|x| / 127, plus what
  // storing d as float16 (relative error <= 2^-11) does to the at most 127
  // steps of a value.
  const std::vector<float> values = gguf_test::wave(128);
  const std::vector<float> back = gguf::dequantize_q8_0(gguf::read_tensor(path, file, file.tensors[1]));
  ASSERT_EQ(back.size(), values.size());
  for (size_t block = 0; block < 4; ++block) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(values[block * 32 + j]));
    const float d = amax / 127;
    for (size_t j = 0; j < 32; ++j)
      EXPECT_LE(std::fabs(back[block * 32 + j] - values[block * 32 + j]), 0.5f * d + 127 * d * std::ldexp(1.0f, -11));
  }
  fs::remove(path);
}

TEST(GgufFile, Q8RoundsHalfAwayFromZeroAndZeroBlocksStayZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1: q = round(x)
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  std::vector<uint8_t> q(34);
  gguf::quantize_q8_0(x, q.data());
  EXPECT_EQ(q[0], 0x00);  // float16 1.0 = 0x3c00, little-endian
  EXPECT_EQ(q[1], 0x3c);
  EXPECT_EQ(static_cast<int8_t>(q[2]), 127);
  EXPECT_EQ(static_cast<int8_t>(q[3]), 3);
  EXPECT_EQ(static_cast<int8_t>(q[4]), -3);
  EXPECT_EQ(static_cast<int8_t>(q[5]), 0);
  std::vector<float> zeros(32, 0.0f);
  gguf::quantize_q8_0(zeros, q.data());
  for (uint8_t b : q) EXPECT_EQ(b, 0);
}

TEST(GgufFile, Q8EqualsRoundfOnEveryValue) {
  // The inline rounding against libm's roundf, on random blocks and on
  // values that land on halves (x * id = k + 0.5) and next to them.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(32 * 4096);
  for (float& v : x) v = normal(rng);
  for (size_t block = 0; block < 64; ++block) {
    float* b = x.data() + block * 32;
    b[0] = 127.0f;  // d = 1, id = 1
    for (size_t j = 1; j < 32; ++j) {
      const float half = static_cast<float>(static_cast<int>(j) - 16) + 0.5f;
      b[j] = j % 3 == 0 ? half : j % 3 == 1 ? std::nextafter(half, 0.0f) : std::nextafter(half, 200.0f);
    }
  }
  std::vector<uint8_t> q(x.size() / 32 * 34);
  gguf::quantize_q8_0(x, q.data());
  for (size_t block = 0; block < x.size() / 32; ++block) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[block * 32 + j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (size_t j = 0; j < 32; ++j)
      ASSERT_EQ(static_cast<int8_t>(q[block * 34 + 2 + j]), static_cast<int8_t>(std::roundf(x[block * 32 + j] * id)))
          << "block " << block << " value " << j;
  }
}

TEST(GgufFile, DamagedFilesAreRefusedByName) {
  const std::string path = temp_path("damaged.gguf");
  gguf_test::write_sample(path);
  const auto size = fs::file_size(path);
  fs::resize_file(path, 40);
  EXPECT_NE(error_of([&] { gguf::read(path); }).find("ends inside the header"), std::string::npos);
  gguf_test::write_sample(path);
  fs::resize_file(path, size - 64);
  const std::string past = error_of([&] { gguf::read(path); });
  EXPECT_NE(past.find("tensor wave.f32 ends at byte"), std::string::npos) << past;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "GGML not a gguf";
  }
  const std::string magic = error_of([&] { gguf::read(path); });
  EXPECT_NE(magic.find(path), std::string::npos);
  EXPECT_NE(magic.find("not a GGUF file"), std::string::npos);
  fs::remove(path);
}

TEST(GgufFile, AnUnfinishedWriterLeavesNothing) {
  const std::string path = temp_path("unfinished.gguf");
  {
    gguf::Writer w(path, {}, {{"t", {2, 2}, gguf::TensorType::kF32}});
    EXPECT_TRUE(fs::exists(path + ".tmp"));
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(fs::exists(path));
}

// Tensors past the writer's writeback threshold (64 MiB), written in parts
// and copied by the kernel from another file at an offset of another page
// phase: every byte where the header says, the file complete (padded to its
// aligned end) and readable under its temporary name before finish(), and
// only then under its own.
TEST(GgufFile, LargeTensorsWrittenAndCopiedReadBackBeforeAndAfterFinish) {
  const std::string path = temp_path("large.gguf"), source_path = temp_path("large.source");
  std::vector<float> source(20 << 20);  // 80 MiB
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<float>(i % 9973) - 17.5f;
  {
    std::ofstream out(source_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(source.data()), static_cast<std::streamsize>(source.size() * 4));
  }
  const int fd = ::open(source_path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::vector<float> written = gguf_test::ramp(18 << 20);  // 72 MiB
  {
    gguf::Writer w(path, {}, {{"written", {18 << 10, 1024}, gguf::TensorType::kF32},
                              {"odd", {3}, gguf::TensorType::kF32},
                              {"copied", {(20 << 10) - 1, 1024}, gguf::TensorType::kF32}});
    const auto* bytes = reinterpret_cast<const uint8_t*>(written.data());
    for (size_t at = 0; at < written.size() * 4; at += 24 << 20)
      w.write_tensor_part({bytes + at, std::min<size_t>(24 << 20, written.size() * 4 - at)});
    w.write_tensor({bytes, 12});
    // The copied tensor: all of the source but its first 1024 values, from
    // byte 4096 - 12 on (a page phase no GGUF offset has), in two parts.
    ASSERT_TRUE(w.copy_tensor_part(fd, 4096 - 12, 30 << 20));
    ASSERT_TRUE(w.copy_tensor_part(fd, 4096 - 12 + (30 << 20), ((20 << 10) - 1) * 4096ull - (30 << 20)));
    w.complete();
    const gguf::File early = gguf::read(w.temp_path());
    EXPECT_EQ(early.file_size % 32, 0u);
    EXPECT_EQ(gguf::read_tensor(w.temp_path(), early, early.tensors[0]), gguf_test::bytes_of(written));
    EXPECT_FALSE(fs::exists(path));
    w.finish();
  }
  ::close(fd);
  const gguf::File file = gguf::read(path);
  EXPECT_EQ(fs::file_size(path), file.file_size);
  EXPECT_EQ(gguf::read_tensor(path, file, file.tensors[0]), gguf_test::bytes_of(written));
  EXPECT_EQ(gguf::read_tensor(path, file, file.tensors[1]),
            gguf_test::bytes_of(std::vector<float>(written.begin(), written.begin() + 3)));
  const std::vector<uint8_t> copied = gguf::read_tensor(path, file, file.tensors[2]);
  const auto* source_bytes = reinterpret_cast<const uint8_t*>(source.data());
  ASSERT_EQ(copied.size(), ((20 << 10) - 1) * 4096ull);
  EXPECT_TRUE(std::equal(copied.begin(), copied.end(), source_bytes + 4096 - 12));
  fs::remove(path);
  fs::remove(source_path);
}

}  // namespace
