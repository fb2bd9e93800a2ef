// Tests of the safetensors reader/writer: round trips, sharding, and one test
// per kind of malformed file, each built byte by byte so the exact defect is
// known and the error message can be checked for the path and tensor name.
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/mapped_file.h"

namespace st::safetensors {
namespace {

namespace fs = std::filesystem;

// Removes this process's test directories at exit, so runs do not pile up
// files in the temp dir.
struct TestDirCleanup {
  std::vector<std::string> dirs;
  ~TestDirCleanup() {
    std::error_code ec;
    for (const auto& dir : dirs) fs::remove_all(dir, ec);
  }
};

// A directory per test, named after it and emptied on the test's first
// call, so tests never see each other's files.
std::string test_dir() {
  static TestDirCleanup cleanup;
  static std::string last;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 cat("st_safetensors_", ::getpid(), "_", info->test_suite_name(), "_",
                     info->name());
  if (dir.string() != last) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    last = dir.string();
    cleanup.dirs.push_back(last);
  }
  return dir.string();
}

std::string le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Writes a file whose header is `header` verbatim, followed by `data`.
std::string raw_file(const std::string& name, const std::string& header,
                     const std::string& data = "") {
  std::string path = (fs::path(test_dir()) / name).string();
  write_bytes(path, le64(header.size()) + header + data);
  return path;
}

// Opens `path` expecting an st::Error whose message contains the path and
// every one of `parts`.
void expect_rejected(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    File file(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos)
          << "message lacks '" << part << "': " << message;
  }
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return cat("\"", name, "\":{\"dtype\":\"", dtype, "\",\"shape\":", shape,
             ",\"data_offsets\":", offsets, "}");
}

std::vector<unsigned char> pattern(size_t n, unsigned seed) {
  std::vector<unsigned char> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(i * 31 + seed * 7 + 1);
  return out;
}

std::string bytes_of(const TensorInfo& t) {
  return std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
}

// ---------------------------------------------------------------- dtypes

TEST(SafetensorsDType, NamesRoundTripAndSizes) {
  for (DType d : all_dtypes()) EXPECT_EQ(parse_dtype(dtype_name(d), "ctx"), d);
  EXPECT_EQ(all_dtypes().size(), 22u);
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::C64), 8u);
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
  EXPECT_EQ(dtype_bits(DType::F4), 4u);
  EXPECT_EQ(dtype_bits(DType::F6_E3M2), 6u);
  EXPECT_THROW(dtype_size(DType::F4), Error);
}

TEST(SafetensorsDType, UnknownNameNamesContext) {
  try {
    parse_dtype("f32", "weights.safetensors: tensor 'w'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weights.safetensors: tensor 'w'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'f32'"), std::string::npos);
  }
}

// ---------------------------------------------------------------- round trip

TEST(SafetensorsRoundTrip, EveryDtypeScalarsEmptiesAndMetadata) {
  const std::string path = (fs::path(test_dir()) / "all.safetensors").string();
  std::vector<std::vector<unsigned char>> buffers;
  std::vector<TensorToWrite> tensors;
  auto add = [&](std::string name, DType dtype, std::vector<int64_t> shape) {
    size_t n = tensor_nbytes(dtype, shape, "test");
    buffers.push_back(pattern(n, static_cast<unsigned>(buffers.size())));
    tensors.push_back({std::move(name), dtype, std::move(shape), buffers.back().data(), n});
  };
  // Deliberately not in name order: the file must keep the given order.
  for (DType d : all_dtypes()) add(cat("z.", dtype_name(d)), d, {2, 4});
  for (DType d : all_dtypes())
    if (dtype_bits(d) % 8 == 0) add(cat("scalar.", dtype_name(d)), d, {});
  add("empty.a", DType::F32, {0});
  add("empty.b", DType::BF16, {3, 0, 5});
  add("a.last", DType::I64, {3});
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "héllo \"q\""}};
  write_file(path, tensors, metadata);

  File file(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.tensors().size(), tensors.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& got = file.tensors()[i];
    const TensorToWrite& want = tensors[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dtype, want.dtype);
    EXPECT_EQ(got.shape, want.shape);
    EXPECT_EQ(got.begin, offset);
    EXPECT_EQ(got.end, offset + want.nbytes);
    EXPECT_EQ(got.nbytes, want.nbytes);
    EXPECT_EQ(bytes_of(got),
              std::string(static_cast<const char*>(want.data), want.nbytes));
    EXPECT_EQ(&file.at(want.name), &got);
    offset = got.end;
  }
  EXPECT_EQ(file.at("scalar.F32").numel(), 1);
  EXPECT_TRUE(file.at("scalar.F32").shape.empty());
  EXPECT_EQ(file.at("empty.b").numel(), 0);
  EXPECT_EQ(file.at("z.F4").numel(), 8);

  // The header is space-padded so the data section starts 8-byte aligned.
  const std::string bytes = read_file(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | uint8_t(bytes[i]);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_size + offset);
}

TEST(SafetensorsRoundTrip, ZeroTensorsMatchesReferenceBytes) {
  const std::string dir = test_dir();
  const std::string path = dir + "/empty.safetensors";
  write_file(path, {}, {});
  // The reference writer's output for an empty dict.
  EXPECT_EQ(read_file(path), le64(8) + "{}      ");
  File file(path);
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.find("x"), nullptr);

  write_file(path, {}, {{"framework", "pt"}});
  EXPECT_EQ(read_file(path), le64(40) + "{\"__metadata__\":{\"framework\":\"pt\"}}     ");
  EXPECT_EQ(File(path).metadata().at("framework"), "pt");
}

TEST(SafetensorsRoundTrip, MatchesReferenceSerialization) {
  const std::string path = test_dir() + "/ref.safetensors";
  const float values[] = {0, 1, 2, 3, 4, 5};
  write_file(path, {{"attn.0", DType::F32, {1, 2, 3}, values, sizeof values}}, {});
  // The reference library's own test vector for this tensor.
  const std::string header =
      "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
  EXPECT_EQ(read_file(path),
            le64(64) + header + std::string(reinterpret_cast<const char*>(values), 24));
}

TEST(SafetensorsRoundTrip, MissingTensorNamesFileAndTensor) {
  const std::string path = test_dir() + "/m.safetensors";
  const int32_t v = 7;
  write_file(path, {{"w", DType::I32, {}, &v, 4}}, {});
  File file(path);
  EXPECT_EQ(file.find("nope"), nullptr);
  try {
    file.at("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": no tensor 'nope'");
  }
}

TEST(SafetensorsRoundTrip, MoveKeepsDataValid) {
  const std::string path = test_dir() + "/mv.safetensors";
  const int64_t v[] = {1, 2, 3};
  write_file(path, {{"w", DType::I64, {3}, v, sizeof v}}, {});
  File a(path);
  const std::byte* data = a.at("w").data;
  File b(std::move(a));
  EXPECT_EQ(b.at("w").data, data);
  File c(path);
  c = std::move(b);
  EXPECT_EQ(std::memcmp(c.at("w").data, v, sizeof v), 0);
}

TEST(SafetensorsRoundTrip, ReleaseKeepsBytesReadable) {
  const std::string path = test_dir() + "/big.safetensors";
  std::vector<unsigned char> small = pattern(3, 1), big = pattern(1 << 20, 2);
  write_file(path,
             {{"small", DType::U8, {3}, small.data(), small.size()},
              {"big", DType::U8, {int64_t(big.size())}, big.data(), big.size()},
              {"tail", DType::U8, {3}, small.data(), small.size()}},
             {});
  File file(path);
  const TensorInfo& t = file.at("big");
  EXPECT_EQ(bytes_of(t), std::string(big.begin(), big.end()));
  file.release(t);
  file.release(file.at("small"));  // smaller than a page: nothing to drop
  // Dropped pages come back from the file; neighbours are untouched.
  EXPECT_EQ(bytes_of(t), std::string(big.begin(), big.end()));
  EXPECT_EQ(bytes_of(file.at("tail")), std::string(small.begin(), small.end()));
}

TEST(SafetensorsRoundTrip, ReaderOrdersByOffsetNotByKey) {
  const std::string path =
      raw_file("order.safetensors",
               "{" + entry("a", "U8", "[2]", "[3,5]") + "," + entry("b", "U8", "[3]", "[0,3]") +
                   "," + entry("c", "U8", "[0]", "[3,3]") + "}",
               "bbbaa");
  File file(path);
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "b");
  EXPECT_EQ(file.tensors()[1].name, "c");
  EXPECT_EQ(file.tensors()[2].name, "a");
  EXPECT_EQ(bytes_of(file.at("a")), "aa");
}

TEST(SafetensorsRoundTrip, AcceptsWhatTheReferenceAccepts) {
  // Leading whitespace, unknown fields, null metadata, zero-size tensors
  // sharing an offset, an empty name: all load in the reference library.
  const std::string path = raw_file(
      "lenient.safetensors",
      "  {\"__metadata__\":null,\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
      "\"extra\":{\"k\":[1,2]}}," +
          entry("e1", "F32", "[0]", "[0,0]") + "," + entry("e2", "F32", "[0,4]", "[0,0]") + "," +
          entry("", "U8", "[]", "[1,2]") + "}   ",
      "xy");
  File file(path);
  EXPECT_EQ(file.tensors().size(), 4u);
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(bytes_of(file.at("")), "y");
}

// ---------------------------------------------------------------- writer errors

TEST(SafetensorsWrite, RejectsBadTensors) {
  const std::string dir = test_dir();
  const std::string path = dir + "/w.safetensors";
  const float v[4] = {};
  auto expect_write_error = [&](std::vector<TensorToWrite> tensors, const std::string& part) {
    try {
      write_file(path, tensors, {});
      ADD_FAILURE() << "accepted, expected " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path));
  };
  expect_write_error({{"w", DType::F32, {3}, v, 16}}, "'w'");
  expect_write_error({{"w", DType::F32, {4}, v, 16}, {"w", DType::F32, {4}, v, 16}}, "twice");
  expect_write_error({{"__metadata__", DType::F32, {4}, v, 16}}, "reserved");
  expect_write_error({{"n", DType::F32, {-4}, v, 16}}, "negative dimension");
  expect_write_error({{"f4", DType::F4, {3}, v, 2}}, "byte boundary");
  expect_write_error({{"bad\xff", DType::F32, {4}, v, 16}}, "UTF-8");
  // Nothing but the target was touched: no temporary file is left behind.
  EXPECT_TRUE(fs::is_empty(dir));
}

// ---------------------------------------------------------------- sharding

std::vector<TensorToWrite> sized_tensors(const std::vector<size_t>& sizes,
                                         std::vector<std::vector<unsigned char>>& buffers) {
  std::vector<TensorToWrite> out;
  buffers.clear();
  buffers.reserve(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    buffers.push_back(pattern(sizes[i], static_cast<unsigned>(i)));
    out.push_back({cat("t", i), DType::U8, {int64_t(sizes[i])}, buffers.back().data(), sizes[i]});
  }
  return out;
}

// Checks every tensor is in the file `expected` says, with its bytes.
void expect_shards(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                   const std::map<std::string, std::string>& expected) {
  for (const auto& t : tensors) {
    File file(dir + "/" + expected.at(t.name));
    EXPECT_EQ(file.metadata().at("format"), "pt");
    EXPECT_EQ(bytes_of(file.at(t.name)),
              std::string(static_cast<const char*>(t.data), t.nbytes));
  }
}

TEST(SafetensorsShard, EverythingFitsWritesOneFileWithoutIndex) {
  const std::string dir = test_dir() + "/out";  // created by write_sharded
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors({50, 50}, buffers);
  auto names = write_sharded(dir, tensors, 100, {{"extra", "1"}});
  EXPECT_EQ(names, std::vector<std::string>{"model.safetensors"});
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
  expect_shards(dir, tensors, {{"t0", "model.safetensors"}, {"t1", "model.safetensors"}});
  EXPECT_EQ(File(dir + "/model.safetensors").metadata().at("extra"), "1");
}

TEST(SafetensorsShard, TwoShardsWithIndex) {
  const std::string dir = test_dir();
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors({40, 40, 40}, buffers);
  auto names = write_sharded(dir, tensors, 100);
  EXPECT_EQ(names, (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors",
                                             "model.safetensors.index.json"}));
  const std::map<std::string, std::string> expected = {
      {"t0", "model-00001-of-00002.safetensors"},
      {"t1", "model-00001-of-00002.safetensors"},
      {"t2", "model-00002-of-00002.safetensors"}};
  const std::string index_path = dir + "/model.safetensors.index.json";
  EXPECT_EQ(read_index(index_path), expected);
  const auto index = nlohmann::json::parse(read_file(index_path));
  EXPECT_EQ(index["metadata"]["total_size"], 120);
  EXPECT_EQ(index["weight_map"].size(), 3u);
  EXPECT_EQ(read_file(index_path).back(), '\n');
  expect_shards(dir, tensors, expected);
}

TEST(SafetensorsShard, OversizeTensorGetsItsOwnShardLikeTransformers) {
  const std::string dir = test_dir();
  std::vector<std::vector<unsigned char>> buffers;
  // huggingface_hub's split: t1 is over the limit and becomes a shard as soon
  // as it is met; t0 and t2 share the shard that was open; t3+t4 follow.
  auto tensors = sized_tensors({40, 200, 40, 40, 40, 0}, buffers);
  auto names = write_sharded(dir, tensors, 100);
  ASSERT_EQ(names.size(), 4u);
  const std::map<std::string, std::string> expected = {
      {"t1", "model-00001-of-00003.safetensors"},
      {"t0", "model-00002-of-00003.safetensors"},
      {"t2", "model-00002-of-00003.safetensors"},
      {"t3", "model-00003-of-00003.safetensors"},
      {"t4", "model-00003-of-00003.safetensors"},
      {"t5", "model-00003-of-00003.safetensors"}};
  EXPECT_EQ(read_index(dir + "/model.safetensors.index.json"), expected);
  const auto index = nlohmann::json::parse(read_file(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 360);
  expect_shards(dir, tensors, expected);
}

TEST(SafetensorsShard, StreamedBytesGiveTheSameFiles) {
  // The oversize case: shards that do not hold consecutive tensors.
  std::vector<std::vector<unsigned char>> buffers;
  const auto tensors = sized_tensors({40, 200, 40, 40, 40, 0}, buffers);
  const std::string direct = test_dir() + "/direct", streamed = test_dir() + "/streamed";
  write_sharded(direct, tensors, 100);
  std::vector<TensorToWrite> shapes_only = tensors;
  for (auto& t : shapes_only) t.data = nullptr;
  std::vector<size_t> asked;
  // Each tensor handed over in pieces of 7 bytes, one piece in memory at a
  // time, as a streaming writer converts blocks of rows.
  const auto names = write_sharded(streamed, shapes_only, 100, {}, [&](size_t i, TensorSink& sink) {
    asked.push_back(i);
    for (size_t at = 0; at < buffers[i].size(); at += 7) {
      const std::vector<unsigned char> piece(buffers[i].begin() + at,
                                             buffers[i].begin() + std::min(buffers[i].size(), at + 7));
      sink.write(piece.data(), piece.size());
    }
  });
  ASSERT_EQ(names.size(), 4u);
  std::vector<size_t> sorted = asked;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<size_t>{0, 1, 2, 3, 4, 5}));  // each tensor once
  for (const std::string& name : names)
    EXPECT_EQ(read_file(streamed + "/" + name), read_file(direct + "/" + name)) << name;
}

TEST(SafetensorsShard, KernelCopiedBytesGiveTheSameFiles) {
  // Every other tensor copied from a file by the kernel (export's path for
  // tensors written as stored), the rest written: the same files.
  std::vector<std::vector<unsigned char>> buffers;
  const auto tensors = sized_tensors({40, 200, 40, 40, 40, 0}, buffers);
  const std::string direct = test_dir() + "/direct", copied = test_dir() + "/copied";
  write_sharded(direct, tensors, 100);
  const std::string source = test_dir() + "/source.bin";
  std::vector<uint64_t> offsets;
  {
    std::ofstream out(source, std::ios::binary);
    out << "prefix";  // unaligned offsets, as in a safetensors file
    for (const auto& b : buffers) {
      offsets.push_back(static_cast<uint64_t>(out.tellp()));
      out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    }
  }
  const int fd = ::open(source.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<TensorToWrite> shapes_only = tensors;
  for (auto& t : shapes_only) t.data = nullptr;
  int kernel_copies = 0;
  const auto names = write_sharded(copied, shapes_only, 100, {}, [&](size_t i, TensorSink& sink) {
    if (i % 2 == 0 && sink.copy(fd, offsets[i], buffers[i].size())) ++kernel_copies;
    else sink.write(buffers[i].data(), buffers[i].size());
  });
  ::close(fd);
  EXPECT_GT(kernel_copies, 0);
  for (const std::string& name : names)
    EXPECT_EQ(read_file(copied + "/" + name), read_file(direct + "/" + name)) << name;
}

TEST(SafetensorsShard, AWrittenTensorReadsBackWhileTheFileIsWritten) {
  // flush() after each tensor: its bytes, read from a mapping of the
  // temporary file at its final size, are the ones written, at the offset
  // the finished file's header gives them (merge's read-back).
  std::vector<std::vector<unsigned char>> buffers;
  const auto tensors = sized_tensors({40, 200, 40, 40, 40, 0}, buffers);
  const std::string dir = test_dir() + "/streamed";
  std::vector<TensorToWrite> shapes_only = tensors;
  for (auto& t : shapes_only) t.data = nullptr;
  std::map<std::string, std::unique_ptr<MappedFile>> mapped;  // by temporary name
  std::map<std::string, std::pair<std::string, uint64_t>> places;  // tensor -> (file, offset)
  std::map<std::string, uint64_t> sizes;  // file -> its size as the sink said it would be
  const auto names = write_sharded(dir, shapes_only, 100, {}, [&](size_t i, TensorSink& sink) {
    sink.write(buffers[i].data(), buffers[i].size());
    const TensorPlace place = sink.flush();
    EXPECT_NE(place.temp_path, place.path);
    EXPECT_TRUE(std::filesystem::exists(place.temp_path));
    auto& file = mapped[place.temp_path];
    if (!file) file = std::make_unique<MappedFile>(place.temp_path, place.file_size);
    ASSERT_LE(place.offset + buffers[i].size(), place.file_size);
    EXPECT_EQ(0, std::memcmp(file->data() + place.offset, buffers[i].data(), buffers[i].size())) << tensors[i].name;
    places[tensors[i].name] = {place.path, place.offset};
    sizes[place.path] = place.file_size;
  });
  ASSERT_EQ(places.size(), tensors.size());
  for (const std::string& name : names) {
    if (name == kIndexFileName) continue;
    const File file(dir + "/" + name);
    EXPECT_EQ(std::filesystem::file_size(dir + "/" + name), sizes[dir + "/" + name]) << name;
    for (const TensorInfo& info : file.tensors()) {
      EXPECT_EQ(places[info.name].first, dir + "/" + name) << info.name;
      EXPECT_EQ(places[info.name].second, file.file_offset(info)) << info.name;
    }
  }
}

TEST(SafetensorsShard, AStreamThatFallsShortIsAnError) {
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors({40}, buffers);
  const std::string dir = test_dir();
  try {
    write_sharded(dir, tensors, 100, {}, [&](size_t i, TensorSink& sink) { sink.write(buffers[i].data(), 39); });
    ADD_FAILURE() << "a short stream was written";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("39 bytes written of 40"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.safetensors"));  // the atomic file was dropped
}

TEST(SafetensorsShard, ManySmallShards) {
  const std::string dir = test_dir();
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors(std::vector<size_t>(12, 8), buffers);
  auto names = write_sharded(dir, tensors, 8);
  ASSERT_EQ(names.size(), 13u);
  EXPECT_EQ(names[11], "model-00012-of-00012.safetensors");
  auto index = read_index(dir + "/model.safetensors.index.json");
  EXPECT_EQ(index.at("t11"), "model-00012-of-00012.safetensors");
  expect_shards(dir, tensors, index);
}

TEST(SafetensorsShard, NewSaveRemovesStaleFilesOfTheOldOne) {
  const std::string dir = test_dir();
  write_bytes(dir + "/config.json", "{}");
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors({40, 40, 40}, buffers);
  write_sharded(dir, tensors, 40);  // three shards
  write_sharded(dir, tensors, 80);  // two shards: the -of-00003 set is stale
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.insert(e.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                          "model-00002-of-00002.safetensors",
                                          "model.safetensors.index.json"}));
  write_sharded(dir, tensors, 1000);  // one file: the index would mislead
  files.clear();
  for (const auto& e : fs::directory_iterator(dir)) files.insert(e.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "model.safetensors"}));
  write_sharded(dir, tensors, 80);  // sharded again: model.safetensors is stale
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
}

TEST(SafetensorsShard, BadTensorWritesNothing) {
  const std::string dir = test_dir();
  std::vector<std::vector<unsigned char>> buffers;
  auto tensors = sized_tensors({40, 40, 40}, buffers);
  tensors[2].nbytes = 39;
  EXPECT_THROW(write_sharded(dir, tensors, 40), Error);
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_THROW(write_sharded(dir, {}, 0), Error);
}

// ---------------------------------------------------------------- read_index

void expect_index_rejected(const std::string& text, std::initializer_list<std::string> parts) {
  const std::string path = test_dir() + "/model.safetensors.index.json";
  write_bytes(path, text);
  try {
    read_index(path);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "lacks '" << part << "': " << message;
  }
}

TEST(SafetensorsIndex, AcceptsTransformersLayout) {
  const std::string path = test_dir() + "/i.json";
  write_bytes(path,
              R"({"metadata":{"total_size":12,"total_parameters":3},)"
              R"("weight_map":{"a":"model-00001-of-00002.safetensors","b":"x.safetensors"}})");
  auto map = read_index(path);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.at("b"), "x.safetensors");
}

TEST(SafetensorsIndex, NotJson) { expect_index_rejected("{\"weight_map\":", {"JSON"}); }
TEST(SafetensorsIndex, NotObject) { expect_index_rejected("[]", {"object"}); }
TEST(SafetensorsIndex, MissingWeightMap) {
  expect_index_rejected("{\"metadata\":{}}", {"weight_map"});
}
TEST(SafetensorsIndex, WeightMapNotObject) {
  expect_index_rejected("{\"weight_map\":[1]}", {"weight_map", "object"});
}
TEST(SafetensorsIndex, MetadataNotObject) {
  expect_index_rejected("{\"metadata\":3,\"weight_map\":{}}", {"metadata"});
}
TEST(SafetensorsIndex, ValueNotString) {
  expect_index_rejected("{\"weight_map\":{\"w.q\":3}}", {"'w.q'", "string"});
}
TEST(SafetensorsIndex, ShardInOtherDirectory) {
  expect_index_rejected("{\"weight_map\":{\"w.q\":\"sub/a.safetensors\"}}", {"'w.q'", "sub/a"});
  expect_index_rejected("{\"weight_map\":{\"w.k\":\"../a.safetensors\"}}", {"'w.k'", "..", "'/'"});
  expect_index_rejected("{\"weight_map\":{\"w.v\":\"..\"}}", {"'w.v'"});
  expect_index_rejected("{\"weight_map\":{\"w.o\":\"\"}}", {"'w.o'"});
}
TEST(SafetensorsIndex, DuplicateKey) {
  expect_index_rejected(R"({"weight_map":{"w":"a.safetensors","w":"b.safetensors"}})", {"'w'", "twice"});
}
TEST(SafetensorsIndex, MissingFile) {
  const std::string path = test_dir() + "/absent.json";
  EXPECT_THROW(read_index(path), Error);
}

// ---------------------------------------------------------------- bad files

TEST(SafetensorsBadFile, Missing) {
  expect_rejected(test_dir() + "/absent.safetensors", {"cannot open"});
}

TEST(SafetensorsBadFile, Directory) { expect_rejected(test_dir(), {"not a regular file"}); }

TEST(SafetensorsBadFile, EmptyFile) {
  const std::string path = test_dir() + "/zero.safetensors";
  write_bytes(path, "");
  expect_rejected(path, {"truncated", "0 bytes"});
}

TEST(SafetensorsBadFile, ShorterThanLengthPrefix) {
  const std::string path = test_dir() + "/seven.safetensors";
  write_bytes(path, std::string(7, '\0'));
  expect_rejected(path, {"truncated", "7 bytes"});
}

TEST(SafetensorsBadFile, HeaderLengthPastEndOfFile) {
  const std::string path = test_dir() + "/past.safetensors";
  write_bytes(path, le64(100) + "{}");
  expect_rejected(path, {"header length 100", "past the end", "10 bytes"});
}

TEST(SafetensorsBadFile, HeaderLengthAbsurd) {
  const std::string path = test_dir() + "/huge.safetensors";
  write_bytes(path, le64(100'000'001) + "{}");
  expect_rejected(path, {"header length 100000001", "limit"});
  write_bytes(path, le64(~uint64_t{0}) + "{}");
  expect_rejected(path, {"header length 18446744073709551615"});
}

TEST(SafetensorsBadFile, HeaderNotUtf8) {
  expect_rejected(raw_file("u.safetensors", "{\"a\xff\":1}"), {"header", "UTF-8", "offset 3"});
  expect_rejected(raw_file("u2.safetensors", "{\"\xed\xa0\x80\":1}"), {"UTF-8"});  // surrogate
  expect_rejected(raw_file("u3.safetensors", "{\"\xc0\xaf\":1}"), {"UTF-8"});      // overlong
}

TEST(SafetensorsBadFile, HeaderNotJson) {
  expect_rejected(raw_file("j.safetensors", "{\"a\":"), {"header", "not valid JSON"});
  expect_rejected(raw_file("j2.safetensors", ""), {"not valid JSON"});
  expect_rejected(raw_file("j3.safetensors", "{} x"), {"not valid JSON"});
}

TEST(SafetensorsBadFile, HeaderWithNulByte) {
  // nlohmann's lexer would stop at the NUL and accept "{}".
  expect_rejected(raw_file("nul.safetensors", std::string("{}\0garbage", 10)), {"NUL"});
}

TEST(SafetensorsBadFile, HeaderNotObject) {
  expect_rejected(raw_file("arr.safetensors", "[]"), {"JSON object", "array"});
  expect_rejected(raw_file("num.safetensors", "12"), {"JSON object", "number"});
}

TEST(SafetensorsBadFile, HeaderTooDeep) {
  const std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  expect_rejected(raw_file("deep.safetensors", deep), {"deeper"});
}

TEST(SafetensorsBadFile, EntryNotObject) {
  expect_rejected(raw_file("e.safetensors", "{\"w.q\":[1,2]}"), {"'w.q'", "object", "array"});
}

TEST(SafetensorsBadFile, MissingDtype) {
  expect_rejected(raw_file("d.safetensors", "{\"w\":{\"shape\":[],\"data_offsets\":[0,0]}}"),
                  {"'w'", "missing \"dtype\""});
}

TEST(SafetensorsBadFile, MissingShape) {
  expect_rejected(
      raw_file("s.safetensors", "{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,0]}}"),
      {"'w'", "missing \"shape\""});
}

TEST(SafetensorsBadFile, MissingDataOffsets) {
  expect_rejected(raw_file("o.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[]}}"),
                  {"'w'", "missing \"data_offsets\""});
}

TEST(SafetensorsBadFile, WrongJsonTypes) {
  expect_rejected(raw_file("t1.safetensors",
                           "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"),
                  {"'w'", "\"dtype\" must be a string", "number"});
  expect_rejected(raw_file("t2.safetensors", "{" + entry("w", "U8", "\"1\"", "[0,1]") + "}", "a"),
                  {"'w'", "\"shape\" must be an array", "string"});
  expect_rejected(raw_file("t3.safetensors", "{" + entry("w", "U8", "[1.0]", "[0,1]") + "}", "a"),
                  {"'w'", "shape[0]", "non-negative integer"});
  expect_rejected(raw_file("t4.safetensors", "{" + entry("w", "U8", "[1]", "{}") + "}", "a"),
                  {"'w'", "[begin, end]"});
  expect_rejected(raw_file("t5.safetensors", "{" + entry("w", "U8", "[1]", "[0,1,2]") + "}", "a"),
                  {"'w'", "[begin, end]"});
  expect_rejected(raw_file("t6.safetensors", "{" + entry("w", "U8", "[1]", "[0,\"1\"]") + "}", "a"),
                  {"'w'", "data_offsets[1]", "non-negative integer", "string"});
  expect_rejected(
      raw_file("t7.safetensors", "{" + entry("w", "U8", "[1]", "[0,1e0]") + "}", "a"),
      {"'w'", "data_offsets[1]", "non-negative integer"});
  expect_rejected(
      raw_file("t8.safetensors", "{" + entry("w", "U8", "[1]", "[0,1e400]") + "}", "a"),
      {"not valid JSON"});
}

TEST(SafetensorsBadFile, UnknownDtype) {
  expect_rejected(raw_file("u.safetensors", "{" + entry("w.k", "F128", "[1]", "[0,16]") + "}",
                           std::string(16, 'x')),
                  {"'w.k'", "unknown dtype 'F128'", "BF16"});
}

TEST(SafetensorsBadFile, NegativeDimension) {
  expect_rejected(raw_file("n.safetensors", "{" + entry("w", "U8", "[2,-1]", "[0,0]") + "}"),
                  {"'w'", "shape[1]", "negative", "-1"});
}

TEST(SafetensorsBadFile, ShapeProductOverflow) {
  expect_rejected(
      raw_file("ov.safetensors",
               "{" + entry("w", "U8", "[4294967296,4294967296]", "[0,0]") + "}"),
      {"'w'", "64 bits"});
  expect_rejected(
      raw_file("ov2.safetensors",
               "{" + entry("w", "F64", "[4294967296,1073741824]", "[0,0]") + "}"),
      {"'w'", "64 bits"});
  expect_rejected(
      raw_file("ov3.safetensors", "{" + entry("w", "U8", "[9223372036854775808]", "[0,0]") + "}"),
      {"'w'", "too large"});
}

TEST(SafetensorsBadFile, DecreasingOrNegativeOffsets) {
  expect_rejected(raw_file("dec.safetensors", "{" + entry("w", "U8", "[0]", "[4,0]") + "}",
                           "abcd"),
                  {"'w'", "[4, 0]", "end before they begin"});
  expect_rejected(raw_file("neg.safetensors", "{" + entry("w", "U8", "[1]", "[-1,0]") + "}", "a"),
                  {"'w'", "data_offsets[0]", "negative"});
}

TEST(SafetensorsBadFile, SpanDoesNotMatchShape) {
  expect_rejected(raw_file("sz.safetensors", "{" + entry("w.o", "F32", "[2,3]", "[0,20]") + "}",
                           std::string(20, 'x')),
                  {"'w.o'", "span 20 bytes", "[2, 3]", "F32", "needs 24 bytes"});
}

TEST(SafetensorsBadFile, SubByteTensorNotOnByteBoundary) {
  expect_rejected(raw_file("f4.safetensors", "{" + entry("q", "F4", "[3]", "[0,2]") + "}", "ab"),
                  {"'q'", "byte boundary"});
}

TEST(SafetensorsBadFile, SpanPastEndOfData) {
  // The classic truncated download: the header promises more than is there.
  expect_rejected(raw_file("trunc.safetensors",
                           "{" + entry("a", "U8", "[4]", "[0,4]") + "," +
                               entry("b", "U8", "[8]", "[4,12]") + "}",
                           "abcdefgh"),
                  {"'b'", "[4, 12]", "past the end of the data section (8 bytes)"});
}

TEST(SafetensorsBadFile, OverlappingSpans) {
  expect_rejected(raw_file("ol.safetensors",
                           "{" + entry("a", "U8", "[4]", "[0,4]") + "," +
                               entry("b", "U8", "[4]", "[2,6]") + "}",
                           "abcdef"),
                  {"'b'", "[2, 6]", "overlap", "'a'", "[0, 4]"});
  // Two tensors on the very same bytes.
  expect_rejected(raw_file("same.safetensors",
                           "{" + entry("a", "U8", "[4]", "[0,4]") + "," +
                               entry("b", "U8", "[4]", "[0,4]") + "}",
                           "abcd"),
                  {"overlap"});
  // A zero-size tensor inside another tensor's bytes.
  expect_rejected(raw_file("inside.safetensors",
                           "{" + entry("a", "U8", "[4]", "[0,4]") + "," +
                               entry("z", "U8", "[0]", "[2,2]") + "}",
                           "abcd"),
                  {"'z'", "overlap", "'a'"});
}

TEST(SafetensorsBadFile, HoleAtStart) {
  expect_rejected(
      raw_file("h0.safetensors", "{" + entry("a", "U8", "[2]", "[2,4]") + "}", "abcd"),
      {"'a'", "starts at data offset 2", "starts at 0", "hole of 2 bytes"});
}

TEST(SafetensorsBadFile, HoleBetweenTensors) {
  expect_rejected(raw_file("h1.safetensors",
                           "{" + entry("a", "U8", "[2]", "[0,2]") + "," +
                               entry("b", "U8", "[2]", "[3,5]") + "}",
                           "abcde"),
                  {"'b'", "starts at data offset 3", "'a' ends at 2", "hole of 1 bytes"});
}

TEST(SafetensorsBadFile, TrailingBytesAfterLastTensor) {
  expect_rejected(
      raw_file("tail.safetensors", "{" + entry("a", "U8", "[2]", "[0,2]") + "}", "abcd"),
      {"data section has 4 bytes", "cover only 2", "2 trailing bytes"});
  expect_rejected(raw_file("tail0.safetensors", "{}", "x"), {"1 trailing bytes"});
}

TEST(SafetensorsBadFile, DuplicateTensorName) {
  expect_rejected(raw_file("dup.safetensors",
                           "{" + entry("w.v", "U8", "[1]", "[0,1]") + "," +
                               entry("w.v", "U8", "[1]", "[1,2]") + "}",
                           "ab"),
                  {"'w.v'", "twice"});
}

TEST(SafetensorsBadFile, MetadataNotStringMap) {
  expect_rejected(raw_file("m1.safetensors", "{\"__metadata__\":[\"pt\"]}"),
                  {"__metadata__", "object", "array"});
  expect_rejected(raw_file("m2.safetensors", "{\"__metadata__\":{\"format\":1}}"),
                  {"__metadata__", "'format'", "string", "number"});
  expect_rejected(raw_file("m3.safetensors", "{\"__metadata__\":{},\"__metadata__\":{}}"),
                  {"__metadata__", "twice"});
}

}  // namespace
}  // namespace st::safetensors
