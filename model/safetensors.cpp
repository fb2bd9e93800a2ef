// safetensors reading (validate the header, then mmap) and writing (single
// files and save_pretrained-style shards). See safetensors.h for the contract.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/mapped_file.h"

namespace st::safetensors {
namespace {

using nlohmann::json;

// The reference reader refuses headers above this size; so do we, so that a
// corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// A real header nests three levels (root, entry, shape); anything much deeper
// is hostile input and would only cost stack and memory.
constexpr int kMaxJsonDepth = 64;

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t bits;
};

constexpr DTypeRow kDTypes[] = {
    {DType::BOOL, "BOOL", 8},
    {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
};

const DTypeRow& row(DType dtype) {
  for (const auto& r : kDTypes)
    if (r.dtype == dtype) return r;
  throw Error(cat("internal error: dtype value ", static_cast<int>(dtype),
                  " is missing from the dtype table"));
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += cat(i ? ", " : "", shape[i]);
  return out + "]";
}

// Short printable rendering of an arbitrary header value for messages.
std::string describe(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return cat(value.type_name(), " ", text);
}

// Returns the offset of the first byte that breaks UTF-8 (overlong forms,
// surrogates and code points past U+10FFFF included), or npos.
size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return i;
    i += len;
  }
  return std::string_view::npos;
}

// Parses JSON text rejecting what nlohmann would silently accept: duplicate
// keys (it keeps the last one, hiding a conflicting entry), NUL bytes (its
// lexer treats NUL as end of input, ignoring whatever follows) and invalid
// UTF-8. `where` prefixes every message ("<path>: header").
json parse_strict_json(std::string_view text, const std::string& where) {
  if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    fail(where, " is not valid UTF-8 (bad byte at offset ", bad, ")");
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail(where, " contains a NUL byte at offset ", nul, ", which JSON does not allow");

  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth)
      fail(where, " nests deeper than ", kMaxJsonDepth, " levels");
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        ST_CHECK(!open_objects.empty() && parsed.is_string());
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second)
          fail(where, " has the key '", key, "' twice");
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail(where, " is not valid JSON: ", e.what());
  }
}

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Reads exactly `size` bytes at `offset`; the file size was checked first,
// so a short read means the file shrank under us.
void read_exact(int fd, void* out, size_t size, uint64_t offset, const std::string& path) {
  auto* dst = static_cast<char*>(out);
  while (size > 0) {
    ssize_t got = ::pread(fd, dst, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(path, ": cannot read: ", std::strerror(errno));
    if (got == 0) fail(path, ": file shrank while being read");
    dst += got;
    size -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

// Closes a file descriptor on every exit path of the constructor.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads an unsigned JSON integer; `what` describes it for the message.
uint64_t get_unsigned(const json& value, const std::string& ctx, const std::string& what) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer())
    fail(ctx, ": ", what, " is negative (", value.get<int64_t>(), ")");
  fail(ctx, ": ", what, " must be a non-negative integer, found ", describe(value));
}

const json& require(const json& entry, const char* key, const std::string& ctx) {
  auto it = entry.find(key);
  if (it == entry.end()) fail(ctx, ": missing \"", key, "\"");
  return *it;
}

// Validates one header entry against the data section size (everything but
// its neighbours, which need the sorted list).
TensorInfo parse_entry(const std::string& name, const json& entry, uint64_t data_size,
                       const std::string& path) {
  const std::string ctx = cat(path, ": tensor '", name, "'");
  if (!entry.is_object())
    fail(ctx, ": entry must be an object with dtype, shape and data_offsets, found ",
         describe(entry));
  TensorInfo info;
  info.name = name;

  const json& dtype = require(entry, "dtype", ctx);
  if (!dtype.is_string()) fail(ctx, ": \"dtype\" must be a string, found ", describe(dtype));
  info.dtype = parse_dtype(dtype.get<std::string>(), ctx);

  const json& shape = require(entry, "shape", ctx);
  if (!shape.is_array()) fail(ctx, ": \"shape\" must be an array, found ", describe(shape));
  info.shape.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t dim = get_unsigned(shape[i], ctx, cat("shape[", i, "]"));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(ctx, ": shape[", i, "] = ", dim, " is too large");
    info.shape.push_back(static_cast<int64_t>(dim));
  }

  const json& offsets = require(entry, "data_offsets", ctx);
  if (!offsets.is_array() || offsets.size() != 2)
    fail(ctx, ": \"data_offsets\" must be [begin, end], found ", describe(offsets));
  info.begin = get_unsigned(offsets[0], ctx, "data_offsets[0]");
  info.end = get_unsigned(offsets[1], ctx, "data_offsets[1]");
  if (info.end < info.begin)
    fail(ctx, ": data_offsets [", info.begin, ", ", info.end, "] end before they begin");

  const uint64_t expected = tensor_nbytes(info.dtype, info.shape, ctx);
  const uint64_t span = info.end - info.begin;
  if (span != expected)
    fail(ctx, ": data_offsets [", info.begin, ", ", info.end, "] span ", span,
         " bytes but shape ", shape_str(info.shape), " of ", dtype_name(info.dtype), " needs ",
         expected, " bytes");
  if (info.end > data_size)
    fail(ctx, ": data_offsets [", info.begin, ", ", info.end,
         "] run past the end of the data section (", data_size,
         " bytes): the file is truncated or the header is wrong");
  info.nbytes = static_cast<size_t>(span);
  return info;
}

// The reference layout rule: sorted by offsets, the tensors tile the data
// section exactly, with no overlap, no hole and no trailing bytes.
void check_layout(const std::vector<TensorInfo>& tensors, uint64_t data_size,
                  const std::string& path) {
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : tensors) {
    if (t.begin < expected)
      fail(path, ": tensor '", t.name, "' data_offsets [", t.begin, ", ", t.end,
           "] overlap tensor '", prev->name, "' [", prev->begin, ", ", prev->end, "]");
    if (t.begin > expected) {
      std::string before = prev ? cat("tensor '", prev->name, "' ends at ", expected)
                                : std::string("the data section starts at 0");
      fail(path, ": tensor '", t.name, "' starts at data offset ", t.begin, " but ", before,
           ": a hole of ", t.begin - expected, " bytes (tensors must be contiguous)");
    }
    expected = t.end;
    prev = &t;
  }
  if (expected != data_size)
    fail(path, ": the data section has ", data_size, " bytes but the tensors cover only ",
         expected, ": ", data_size - expected, " trailing bytes belong to no tensor");
}

// Checks what write_file needs of its input before any byte is written, so
// a bad tensor (in any shard) never leaves a partial save behind.
void check_tensors_to_write(const std::vector<TensorToWrite>& tensors, const std::string& where) {
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string ctx = cat(where, ": tensor '", t.name, "'");
    if (t.name == "__metadata__") fail(ctx, ": the name is reserved for the metadata");
    if (find_invalid_utf8(t.name) != std::string_view::npos)
      fail(ctx, ": the name is not valid UTF-8");
    if (!names.insert(t.name).second) fail(ctx, ": the name is used twice");
    const uint64_t nbytes = tensor_nbytes(t.dtype, t.shape, ctx);
    if (nbytes != t.nbytes)
      fail(ctx, ": shape ", shape_str(t.shape), " of ", dtype_name(t.dtype), " needs ", nbytes,
           " bytes but ", t.nbytes, " were given");
  }
}

void check_metadata_to_write(const std::map<std::string, std::string>& metadata,
                             const std::string& where) {
  for (const auto& [key, value] : metadata)
    if (find_invalid_utf8(key) != std::string_view::npos ||
        find_invalid_utf8(value) != std::string_view::npos)
      fail(where, ": metadata key '", key, "' or its value is not valid UTF-8");
}

// Builds the padded header for write_file from already checked tensors.
std::string build_header(const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t end;
    if (__builtin_add_overflow(offset, uint64_t{t.nbytes}, &end))
      fail(path, ": tensors total over 2^64 bytes");
    auto& entry = header[t.name];
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, end};
    offset = end;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the
  // reference writer does; JSON ignores the trailing whitespace.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes)
    fail(path, ": header of ", text.size(), " bytes exceeds the ", kMaxHeaderBytes,
         "-byte limit readers enforce");
  return text;
}

// The shard file name save_pretrained uses: model-00002-of-00005.safetensors.
std::string shard_name(size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return buf;
}

// Splits tensors into shards with huggingface_hub's rule (what transformers'
// save_pretrained uses): a tensor above the limit is its own shard, appended
// as soon as it is met; others fill the current shard until the next one
// would exceed the limit.
std::vector<std::vector<const TensorToWrite*>> plan_shards(
    const std::vector<TensorToWrite>& tensors, uint64_t max_shard_bytes) {
  std::vector<std::vector<const TensorToWrite*>> shards;
  std::vector<const TensorToWrite*> current;
  uint64_t current_bytes = 0;
  for (const auto& t : tensors) {
    if (t.nbytes > max_shard_bytes) {
      shards.push_back({&t});
      continue;
    }
    if (current_bytes + t.nbytes > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(&t);
    current_bytes += t.nbytes;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  return shards;
}

// True for "model-<digits>-of-<digits>.safetensors", the shard names
// save_pretrained writes (5 digits, more past 99999 shards).
bool is_shard_name(std::string_view name) {
  auto digits = [&](size_t& at) {
    size_t start = at;
    while (at < name.size() && name[at] >= '0' && name[at] <= '9') ++at;
    return at - start >= 5;
  };
  auto literal = [&](size_t& at, std::string_view text) {
    if (name.substr(at, text.size()) != text) return false;
    at += text.size();
    return true;
  };
  size_t at = 0;
  return literal(at, "model-") && digits(at) && literal(at, "-of-") && digits(at) &&
         literal(at, ".safetensors") && at == name.size();
}

// Removes what an earlier save into `dir` left that a loader could take for
// the model: the single file after a sharded save, the index after a
// single-file save, and shard files that are not part of this save.
void remove_stale(const std::filesystem::path& dir, const std::vector<std::string>& written,
                  bool sharded) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::find(written.begin(), written.end(), name) != written.end()) continue;
    if ((sharded && name == kSingleFileName) || (!sharded && name == kIndexFileName) ||
        is_shard_name(name))
      stale.push_back(entry.path());
  }
  if (ec) fail(dir.string(), ": cannot list: ", ec.message());
  for (const auto& path : stale)
    if (!std::filesystem::remove(path, ec) && ec)
      fail(path.string(), ": cannot remove stale file: ", ec.message());
}

}  // namespace

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> all = [] {
    std::vector<DType> out;
    for (const auto& r : kDTypes) out.push_back(r.dtype);
    return out;
  }();
  return all;
}

size_t dtype_bits(DType dtype) { return row(dtype).bits; }

size_t dtype_size(DType dtype) {
  const DTypeRow& r = row(dtype);
  if (r.bits % 8 != 0)
    fail("dtype ", r.name, " packs ", r.bits, "-bit elements and has no per-element byte size");
  return r.bits / 8;
}

const char* dtype_name(DType dtype) { return row(dtype).name; }

DType parse_dtype(const std::string& name, const std::string& context) {
  for (const auto& r : kDTypes)
    if (name == r.name) return r.dtype;
  std::string known;
  for (const auto& r : kDTypes) known += cat(known.empty() ? "" : ", ", r.name);
  fail(context, ": unknown dtype '", name, "' (expected one of ", known, ")");
}

uint64_t tensor_nbytes(DType dtype, const std::vector<int64_t>& shape,
                       const std::string& context) {
  uint64_t numel = 1;
  for (int64_t dim : shape) {
    if (dim < 0) fail(context, ": negative dimension ", dim, " in shape ", shape_str(shape));
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dim), &numel))
      fail(context, ": shape ", shape_str(shape), " has more elements than fit in 64 bits");
  }
  uint64_t bits;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(dtype)), &bits))
    fail(context, ": shape ", shape_str(shape), " of ", dtype_name(dtype),
         " needs more bytes than fit in 64 bits");
  if (bits % 8 != 0)
    fail(context, ": shape ", shape_str(shape), " of ", dtype_name(dtype), " holds ", numel,
         " elements = ", bits, " bits, which does not end on a byte boundary");
  return bits / 8;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

File::File(const std::string& path) : path_(path) {
  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail(path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  if (file_size < 8)
    fail(path, ": truncated: ", file_size,
         " bytes, but a safetensors file starts with an 8-byte header length");
  unsigned char prefix[8];
  read_exact(fd.fd, prefix, 8, 0, path);
  const uint64_t header_size = read_le64(prefix);
  if (header_size > kMaxHeaderBytes)
    fail(path, ": header length ", header_size, " exceeds the ", kMaxHeaderBytes,
         "-byte limit: corrupt or not a safetensors file");
  if (header_size > file_size - 8)
    fail(path, ": header length ", header_size, " runs past the end of the file (",
         file_size, " bytes): truncated or not a safetensors file");
  const uint64_t data_size = file_size - 8 - header_size;

  // The header is read with pread, not through the mapping, so nothing is
  // mapped until every offset has been checked.
  std::string text(header_size, '\0');
  read_exact(fd.fd, text.data(), text.size(), 8, path);
  const json header = parse_strict_json(text, cat(path, ": header"));
  if (!header.is_object())
    fail(path, ": header must be a JSON object, found ", describe(header));

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // the reference reader accepts null
      if (!value.is_object())
        fail(path, ": \"__metadata__\" must be an object of strings, found ", describe(value));
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          fail(path, ": \"__metadata__\" key '", mkey, "' must be a string, found ",
               describe(mvalue));
        metadata_.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    tensors_.push_back(parse_entry(key, value, data_size, path));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  check_layout(tensors_, data_size, path);

  map_size_ = static_cast<size_t>(file_size);
  void* map = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (map == MAP_FAILED) {
    map_size_ = 0;
    fail(path, ": cannot mmap ", file_size, " bytes: ", std::strerror(errno));
  }
  map_ = map;
  const std::byte* data = static_cast<const std::byte*>(map_) + 8 + header_size;
  by_name_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    tensors_[i].data = data + tensors_[i].begin;
    by_name_.emplace(tensors_[i].name, i);
  }
}

File::~File() { unmap(); }

File::File(File&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      tensors_(std::move(other.tensors_)),
      by_name_(std::move(other.by_name_)),
      metadata_(std::move(other.metadata_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    tensors_ = std::move(other.tensors_);
    by_name_ = std::move(other.by_name_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void File::unmap() noexcept {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
}

const TensorInfo* File::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::at(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info) fail(path_, ": no tensor '", name, "'");
  return *info;
}

void File::populate(const TensorInfo& tensor, uint64_t offset, uint64_t bytes) const {
  ST_CHECK(offset + bytes <= tensor.nbytes, "bytes ", offset, "+", bytes, " outside tensor '", tensor.name, "'");
  if (map_) populate_pages(tensor.data + offset, bytes);
}

uint64_t File::file_offset(const TensorInfo& tensor) const {
  const auto base = reinterpret_cast<uintptr_t>(map_), begin = reinterpret_cast<uintptr_t>(tensor.data);
  ST_CHECK(map_ && begin >= base && begin - base + tensor.nbytes <= map_size_, "tensor '", tensor.name,
           "' does not belong to ", path_);
  return begin - base;
}

void File::release(const TensorInfo& tensor) const {
  if (tensor.nbytes == 0) return;
  const auto base = reinterpret_cast<uintptr_t>(map_);
  const auto begin = reinterpret_cast<uintptr_t>(tensor.data);
  ST_CHECK(map_ && begin >= base && tensor.nbytes <= map_size_ &&
               begin - base <= map_size_ - tensor.nbytes,
           "tensor '", tensor.name, "' does not belong to ", path_);
  ST_CHECK(release_pages(tensor.data, tensor.nbytes), "madvise of ", path_, " failed: ", std::strerror(errno));
}

namespace {

// One file of already checked tensors; each tensor's bytes come from its
// data pointer or, when `source` is given, from source(indices[i]).
void write_checked_file(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata, const TensorSource& source,
                        const std::vector<size_t>& indices, Durability durability) {
  const std::string header = build_header(tensors, metadata, path);
  unsigned char prefix[8];
  uint64_t n = header.size();
  for (auto& byte : prefix) {
    byte = static_cast<unsigned char>(n & 0xFF);
    n >>= 8;
  }
  AtomicFile file(path);
  file.write(prefix, sizeof prefix);
  file.write(header);
  uint64_t file_size = file.size();
  for (const TensorToWrite& t : tensors) file_size += t.nbytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!source) {
      ST_CHECK(tensors[i].data != nullptr || tensors[i].nbytes == 0, "tensor '", tensors[i].name, "' has no data");
      file.write(tensors[i].data, tensors[i].nbytes);
      continue;
    }
    struct Sink : TensorSink {
      AtomicFile& file;
      const TensorToWrite& tensor;
      const TensorPlace place;
      size_t written = 0;
      Sink(AtomicFile& f, const TensorToWrite& t, uint64_t file_size)
          : file(f), tensor(t), place{f.path(), f.temp_path(), f.size(), file_size} {}
      void check_room(uint64_t bytes) {
        ST_CHECK(written + bytes <= tensor.nbytes, "tensor '", tensor.name, "': more bytes than ", tensor.nbytes);
      }
      void write(const void* data, size_t bytes) override {
        check_room(bytes);
        file.write(data, bytes);
        written += bytes;
      }
      bool copy(int fd, uint64_t offset, uint64_t bytes) override {
        check_room(bytes);
        if (!file.append_copy(fd, offset, bytes)) return false;
        written += bytes;
        return true;
      }
      TensorPlace flush() override {
        file.flush();
        return place;
      }
    } sink(file, tensors[i], file_size);
    source(indices[i], sink);
    ST_CHECK(sink.written == tensors[i].nbytes, "tensor '", tensors[i].name, "': ", sink.written,
             " bytes written of ", tensors[i].nbytes);
  }
  file.commit(durability);
}

}  // namespace

void write_file(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const std::map<std::string, std::string>& metadata) {
  check_tensors_to_write(tensors, path);
  check_metadata_to_write(metadata, path);
  write_checked_file(path, tensors, metadata, nullptr, {}, Durability::synced);
}

std::vector<std::string> write_sharded(const std::string& dir,
                                       const std::vector<TensorToWrite>& tensors,
                                       uint64_t max_shard_bytes,
                                       std::map<std::string, std::string> metadata) {
  return write_sharded(dir, tensors, max_shard_bytes, std::move(metadata), nullptr);
}

std::vector<std::string> write_sharded(const std::string& dir,
                                       const std::vector<TensorToWrite>& tensors,
                                       uint64_t max_shard_bytes,
                                       std::map<std::string, std::string> metadata,
                                       const TensorSource& source, Durability durability) {
  if (max_shard_bytes == 0) fail(dir, ": the maximum shard size must be positive");
  metadata["format"] = "pt";
  check_tensors_to_write(tensors, dir);
  check_metadata_to_write(metadata, dir);
  const std::filesystem::path root(dir);
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) fail(dir, ": cannot create directory: ", ec.message());

  const auto shards = plan_shards(tensors, max_shard_bytes);
  const bool sharded = shards.size() > 1;
  std::vector<std::string> names;
  json weight_map = json::object();
  uint64_t total_size = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    names.push_back(sharded ? shard_name(i, shards.size()) : kSingleFileName);
    std::vector<TensorToWrite> shard;
    std::vector<size_t> indices;  // into `tensors`: a shard need not hold consecutive ones
    for (const TensorToWrite* t : shards[i]) {
      indices.push_back(static_cast<size_t>(t - tensors.data()));
      shard.push_back(*t);
      weight_map[t->name] = names.back();
      total_size += t->nbytes;
    }
    write_checked_file((root / names.back()).string(), shard, metadata, source, indices, durability);
  }
  if (sharded) {
    // Same layout as save_pretrained's index: sorted keys, 2-space indent.
    json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
    write_file_atomic((root / kIndexFileName).string(), index.dump(2) + "\n");
    names.push_back(kIndexFileName);
  }
  remove_stale(root, names, sharded);
  return names;
}

std::map<std::string, std::string> read_index(const std::string& index_path) {
  const json index = parse_strict_json(read_file(index_path), index_path);
  if (!index.is_object())
    fail(index_path, ": the index must be a JSON object, found ", describe(index));
  if (auto meta = index.find("metadata"); meta != index.end()) {
    if (!meta->is_object())
      fail(index_path, ": \"metadata\" must be an object, found ", describe(*meta));
    if (auto total = meta->find("total_size"); total != meta->end() && !total->is_number())
      fail(index_path, ": \"metadata.total_size\" must be a number, found ", describe(*total));
  }
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end()) fail(index_path, ": missing \"weight_map\"");
  if (!weight_map->is_object())
    fail(index_path, ": \"weight_map\" must be an object, found ", describe(*weight_map));
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : weight_map->items()) {
    if (!file.is_string())
      fail(index_path, ": weight_map key '", name, "' must map to a file name string, found ",
           describe(file));
    const auto& shard = file.get_ref<const std::string&>();
    if (shard.empty() || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos || shard.find("..") != std::string::npos ||
        shard == ".")
      fail(index_path, ": weight_map key '", name, "' names shard '", shard,
           "', which must be a plain file name in the index's directory (no '/' or '..')");
    out.emplace(name, shard);
  }
  return out;
}

}  // namespace st::safetensors
