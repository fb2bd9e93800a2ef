// GGUF files (llama.cpp's model format, version 3), written and read back.
// Torch-free: bytes in, bytes out. The exporter (issue 17) builds on it.
//
// Layout: "GGUF", version 3, the tensor and key-value counts (u64), the
// key-value pairs (key: u64 length + bytes; a u32 value type; the value),
// the tensor infos (name, dims in ggml order -- the fastest-varying first,
// so a Hugging Face weight [out, in] has dims {in, out} --, the ggml type,
// the data offset), padding to the alignment, then each tensor's data at
// its offset, every offset a multiple of the alignment (general.alignment,
// 32 when absent).
//
// Writing streams: the header is known from names, shapes and types alone,
// so it is written first and each tensor's bytes follow in order, one at a
// time, into a temporary name that finish() renames into place.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace st {
class Writeback;  // common/writeback.h
}  // namespace st

namespace st::gguf {

inline constexpr uint32_t kVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;

/// ggml tensor types we write.
enum class TensorType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };
const char* type_name(TensorType type);

/// Q8_0: blocks of 32 values, each a float16 scale d = max|x| / 127 and 32
/// int8 values round(x / d) (half away from zero), as ggml's reference
/// quantize_row_q8_0 computes them in float32.
inline constexpr uint64_t kQ8Block = 32, kQ8BlockBytes = 34;
/// Quantizes `values` (a multiple of 32) into `out` (values.size() / 32 * 34 bytes).
void quantize_q8_0(std::span<const float> values, uint8_t* out);
/// The values a Q8_0 block row stands for.
std::vector<float> dequantize_q8_0(std::span<const uint8_t> bytes);

/// A metadata value: the GGUF scalar types we use, strings, and arrays of them.
using Value = std::variant<uint32_t, int32_t, uint64_t, float, bool, std::string, std::vector<std::string>,
                           std::vector<float>, std::vector<int32_t>>;

/// Key-value metadata in insertion order (llama.cpp does not care about the
/// order; readers and people do).
class Metadata {
 public:
  void set(const std::string& key, Value value);
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  const Value* find(const std::string& key) const;

 private:
  std::vector<std::pair<std::string, Value>> entries_;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> shape;  // row-major, as torch and Hugging Face give it: [out, in]
  TensorType type = TensorType::kF32;
  uint64_t offset = 0;          // from the start of the data section (filled by the writer / reader)
  uint64_t bytes() const;       // the data's size
};

class Writer {
 public:
  /// Writes the header into "<path>.tmp"; tensors must then come in order.
  Writer(std::string path, const Metadata& metadata, std::vector<TensorInfo> tensors,
         uint64_t alignment = kDefaultAlignment);
  ~Writer();  // removes the temporary file unless finished
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// The next tensor's bytes (exactly its bytes()).
  void write_tensor(std::span<const uint8_t> bytes);
  /// The next bytes of the tensors' data, in pieces of any size: a tensor
  /// ends when its bytes() have come (rows converted a block at a time).
  void write_tensor_part(std::span<const uint8_t> bytes);
  /// The next `bytes` of the tensors' data copied from `source_fd` at
  /// `source_offset` by the kernel (kernel_copy, common/atomic_file.h).
  /// False, with nothing written, where the kernel cannot: write the bytes
  /// instead.
  bool copy_tensor_part(int source_fd, uint64_t source_offset, uint64_t bytes);
  /// Every tensor written: hands the bytes to the file and pads it to its
  /// final size. It can then be read back from temp_path() before finish().
  /// Throws if a tensor is missing.
  void complete();
  /// complete(), then fsyncs and renames the file into place.
  void finish();
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The file being written.
  const std::string& temp_path() const { return tmp_; }
  /// Where the tensors' data starts in the file (their offsets count from it).
  uint64_t data_start() const { return data_start_; }
  /// The file's size once complete.
  uint64_t file_size() const { return file_size_; }
  /// Hands the bytes written so far to the file, where a reader of
  /// temp_path() sees them (the tensors written so far can be read back).
  void flush();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  std::vector<TensorInfo> tensors_;
  uint64_t alignment_, data_start_ = 0, file_size_ = 0;
  size_t next_ = 0;
  /// The tensor the next bytes belong to, its padding written first.
  const TensorInfo& start_part();
  /// `bytes` of it written: on to the next tensor when it is complete.
  void end_part(uint64_t bytes);

  /// The file's bytes up to `end` are written: Writeback may start their
  /// disk writes.
  void written_up_to(uint64_t end);

  uint64_t written_ = 0;  // of tensor next_
  int fd_ = -1;           // tmp_ again: for copy_file_range, writeback and fsync
  std::unique_ptr<Writeback> writeback_;
  bool completed_ = false, finished_ = false;
};

/// A GGUF file as read back: its metadata, its tensors with their offsets,
/// and where the data section starts. Throws st::Error naming the file and
/// what is wrong (magic, version, a truncated header, an offset that is not
/// aligned or points past the end, overlapping tensors).
struct File {
  uint32_t version = 0;
  Metadata metadata;
  std::vector<TensorInfo> tensors;
  uint64_t alignment = kDefaultAlignment, data_start = 0, file_size = 0;
};
File read(const std::string& path);
/// One tensor's bytes.
std::vector<uint8_t> read_tensor(const std::string& path, const File& file, const TensorInfo& tensor);

}  // namespace st::gguf
