// Reader and writer for the safetensors format (Hugging Face's weight files),
// plus the sharded layout and index that save_pretrained produces.
//
// Pure C++ with no torch dependency: the model loader turns TensorInfo views
// into tensors. Files are untrusted input, so File validates the whole header
// and every offset before exposing a single byte of tensor data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/atomic_file.h"

namespace st::safetensors {

/// Element types, one per dtype name the reference library accepts.
enum class DType {
  BOOL,
  F4,       // 4-bit float, two per byte
  F6_E2M3,  // 6-bit floats, four per three bytes
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,  // complex of two F32
  F64,
  I64,
  U64,
};

/// Every DType, in declaration order (for tests and error messages).
const std::vector<DType>& all_dtypes();

/// Bits per element; the only way to size the packed sub-byte dtypes.
size_t dtype_bits(DType dtype);

/// Bytes per element. Throws st::Error for the sub-byte dtypes (F4, F6_*),
/// whose elements have no whole-byte size: a caller that wants to treat them
/// element-wise does not support them.
size_t dtype_size(DType dtype);

/// The name used in the file header: "F32", "BF16", ...
const char* dtype_name(DType dtype);

/// Parses a header dtype name; throws st::Error starting with `context`.
DType parse_dtype(const std::string& name, const std::string& context);

/// Bytes that `shape` elements of `dtype` occupy; throws st::Error starting
/// with `context` on negative dims, overflow, or a sub-byte tensor that does
/// not end on a byte boundary.
uint64_t tensor_nbytes(DType dtype, const std::vector<int64_t>& shape,
                       const std::string& context);

/// One tensor of an open File. `data` points into the read-only mapping and
/// stays valid as long as the File (moving the File keeps it valid). The
/// data is little-endian, row-major, and aligned to its element size only if
/// the writer kept it so (ours and the reference writer do for 8-byte padded
/// headers and alignment-ordered tensors); copy with memcpy to be safe.
struct TensorInfo {
  std::string name;
  DType dtype = DType::U8;
  std::vector<int64_t> shape;  // empty for a 0-d scalar
  uint64_t begin = 0;          // offsets within the data section
  uint64_t end = 0;
  const std::byte* data = nullptr;
  size_t nbytes = 0;  // end - begin

  /// Number of elements (1 for a scalar, 0 if any dimension is 0).
  int64_t numel() const;
};

/// A memory-mapped, read-only safetensors file, validated entirely in the
/// constructor. Every failure is an st::Error naming the path and, where one
/// applies, the tensor or header key.
class File {
 public:
  /// Opens, maps and validates `path`.
  explicit File(const std::string& path);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;

  /// The path the file was opened with (used in every message).
  const std::string& path() const { return path_; }
  /// All tensors, ordered by their offsets in the data section.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const TensorInfo* find(const std::string& name) const;
  /// The tensor called `name`; throws st::Error "<path>: no tensor '<name>'".
  const TensorInfo& at(const std::string& name) const;
  /// The header's "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Drops the whole pages inside the tensor's span from this process's
  /// memory (madvise MADV_DONTNEED), so a loader that has copied a tensor
  /// never holds two copies of the weights. The bytes stay readable: touching
  /// them again re-reads the file.
  void release(const TensorInfo& tensor) const;
  /// populate_pages (common/mapped_file.h) over bytes [offset, offset +
  /// bytes) of the tensor's span, before they are converted or hashed: one
  /// call instead of a fault per page.
  void populate(const TensorInfo& tensor, uint64_t offset, uint64_t bytes) const;
  /// Where the tensor's bytes start in the file (for copying them whole
  /// with copy_file_range, as export does with tensors it writes unchanged).
  uint64_t file_offset(const TensorInfo& tensor) const;

 private:
  void unmap() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: `data` must hold exactly the bytes shape x dtype needs.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

/// Writes one file atomically (temporary name + rename). The header JSON is
/// padded with spaces to a multiple of 8 bytes like the reference writer and
/// the tensors are laid out contiguously in the given order, so data stays
/// aligned when tensors are ordered by decreasing element size. Metadata is
/// stored as "__metadata__" when not empty. Throws st::Error naming the
/// tensor for duplicate names or a size that does not match shape x dtype.
void write_file(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const std::map<std::string, std::string>& metadata);

/// Name of the single-file checkpoint and of the shard index in a model dir.
inline constexpr const char* kSingleFileName = "model.safetensors";
inline constexpr const char* kIndexFileName = "model.safetensors.index.json";

/// Writes `tensors` into `dir` (created if missing) the way transformers'
/// save_pretrained shards them: tensors go, in order, into the current shard
/// until the next one would push it past `max_shard_bytes`; a tensor larger
/// than the limit gets a shard of its own. One shard is written as
/// model.safetensors with no index; more as model-00001-of-0000N.safetensors
/// plus model.safetensors.index.json {"metadata":{"total_size":bytes},
/// "weight_map":{tensor:file}}. Every file is atomic and the index comes
/// last; afterwards leftovers of an earlier save that a loader could pick up
/// instead (a stale single file, index or shard set) are removed. Metadata
/// always includes {"format":"pt"}. Returns the written file names in order.
std::vector<std::string> write_sharded(const std::string& dir,
                                       const std::vector<TensorToWrite>& tensors,
                                       uint64_t max_shard_bytes,
                                       std::map<std::string, std::string> metadata = {});

/// Where a tensor's bytes lie in a file being written.
struct TensorPlace {
  std::string path;        // the file's name once complete
  std::string temp_path;   // its name until then
  uint64_t offset = 0;     // of the tensor's first byte
  uint64_t file_size = 0;  // the file's size once complete
};

/// Where a TensorSource puts a tensor's bytes: written in pieces of any
/// size, or copied from a file by the kernel.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual void write(const void* data, size_t bytes) = 0;
  /// Copies `bytes` of `fd` from `offset` (kernel_copy); false, with nothing
  /// written, where the kernel cannot: write them instead.
  virtual bool copy(int fd, uint64_t offset, uint64_t bytes) = 0;
  /// Hands the bytes written so far to the file and says where the
  /// tensor's lie, so that they can be read back while the rest of the
  /// file is written (from a mapping of temp_path at file_size: only the
  /// bytes written so far may be read).
  virtual TensorPlace flush() = 0;
};

/// Hands the bytes of tensor `index` (of the list given to write_sharded)
/// to `sink`, in pieces that add up to exactly its size, when its turn to
/// be written comes: once per tensor, in the order of the shards (a tensor
/// over the limit gets its shard before the open one is written). Lets a
/// writer stream a model tensor by tensor, and a large tensor in row
/// blocks (merge, export), instead of holding all of it.
using TensorSource = std::function<void(size_t index, TensorSink& sink)>;

/// write_sharded with the tensors' bytes taken from `source` (their data
/// pointers are ignored): the same files, with no more than one tensor's
/// bytes in memory at a time. With Durability::deferred the files are not
/// fsynced: the caller syncs them (sync_file) before publishing `dir`.
std::vector<std::string> write_sharded(const std::string& dir,
                                       const std::vector<TensorToWrite>& tensors,
                                       uint64_t max_shard_bytes,
                                       std::map<std::string, std::string> metadata,
                                       const TensorSource& source,
                                       Durability durability = Durability::synced);

/// Reads a model.safetensors.index.json into tensor name -> shard file name.
/// Validates the JSON shape (an object whose "weight_map" maps strings to
/// plain file names, no directories, no "..") and throws st::Error naming
/// the file and the offending key.
std::map<std::string, std::string> read_index(const std::string& index_path);

}  // namespace st::safetensors
