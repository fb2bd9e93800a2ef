#include "export/gguf_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/writeback.h"

namespace fs = std::filesystem;

namespace st::gguf {
namespace {

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
  kU64 = 10, kI64 = 11, kF64 = 12,
};

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// IEEE float to binary16, round to nearest even (what numpy's astype and
// ggml's GGML_FP32_TO_FP16 do).
uint16_t float_to_half(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, exponent = (x >> 23) & 0xffu;
  uint32_t mantissa = x & 0x7fffffu;
  if (exponent == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0u));
  const int32_t e = static_cast<int32_t>(exponent) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {  // a subnormal half, or zero
    if (e < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - e), half_way = 1u << (shift - 1);
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    if (rest > half_way || (rest == half_way && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // a carry rounds up into the exponent
  return static_cast<uint16_t>(half);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  const uint32_t x = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                      : sign | ((exponent + 112) << 23) | (mantissa << 13);
  float value;
  std::memcpy(&value, &x, 4);
  return value;
}

// ---- serialisation -------------------------------------------------------
struct Bytes {
  std::string data;
  template <typename T>
  void put(T value) {
    data.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void string(const std::string& s) {
    put<uint64_t>(s.size());
    data += s;
  }
};

void put_value(Bytes& out, const Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, uint32_t>) out.put<uint32_t>(kU32), out.put(v);
        else if constexpr (std::is_same_v<T, int32_t>) out.put<uint32_t>(kI32), out.put(v);
        else if constexpr (std::is_same_v<T, uint64_t>) out.put<uint32_t>(kU64), out.put(v);
        else if constexpr (std::is_same_v<T, float>) out.put<uint32_t>(kF32), out.put(v);
        else if constexpr (std::is_same_v<T, bool>) out.put<uint32_t>(kBool), out.put<uint8_t>(v ? 1 : 0);
        else if constexpr (std::is_same_v<T, std::string>) out.put<uint32_t>(kString), out.string(v);
        else {
          out.put<uint32_t>(kArray);
          using E = typename T::value_type;
          out.put<uint32_t>(std::is_same_v<E, std::string> ? kString : std::is_same_v<E, float> ? kF32 : kI32);
          out.put<uint64_t>(v.size());
          for (const E& e : v) {
            if constexpr (std::is_same_v<E, std::string>) out.string(e);
            else out.put(e);
          }
        }
      },
      value);
}

// ---- parsing ----------------------------------------------------------------
class Cursor {
 public:
  // Over the file's mapping: a 256k-token vocabulary is a million values,
  // and a stream read each took 80 ms of a 2B export's read-back.
  Cursor(const MappedFile& file, std::string path, uint64_t position)
      : data_(file.data()), path_(std::move(path)), size_(file.size()), position_(position) {}
  template <typename T>
  T get(const char* what) {
    T value;
    need(sizeof(T), what);
    std::memcpy(&value, data_ + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  std::string string(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + position_), n);
    position_ += n;
    return s;
  }
  uint64_t position() const { return position_; }
  [[noreturn]] void bad(const std::string& what) { fail(path_, ": ", what, " (at byte ", position(), ")"); }

 private:
  void need(uint64_t n, const char* what) {
    if (n > size_ - position_) fail(path_, ": the file ends inside the header (reading ", what, ")");
  }
  const uint8_t* data_;
  std::string path_;
  uint64_t size_;
  uint64_t position_;  // <= size_
};

Value scalar(Cursor& c, uint32_t type, const std::string& key) {
  switch (type) {
    case kU8: return static_cast<uint32_t>(c.get<uint8_t>("a value"));
    case kI8: return static_cast<int32_t>(c.get<int8_t>("a value"));
    case kU16: return static_cast<uint32_t>(c.get<uint16_t>("a value"));
    case kI16: return static_cast<int32_t>(c.get<int16_t>("a value"));
    case kU32: return c.get<uint32_t>("a value");
    case kI32: return c.get<int32_t>("a value");
    case kF32: return c.get<float>("a value");
    case kBool: return c.get<uint8_t>("a value") != 0;
    case kString: return c.string("a string value");
    case kU64: return c.get<uint64_t>("a value");
    case kI64: return static_cast<uint64_t>(c.get<int64_t>("a value"));
    case kF64: return static_cast<float>(c.get<double>("a value"));
    default: c.bad(cat("key ", key, " has the unknown value type ", type));
  }
}

Value value(Cursor& c, uint32_t type, const std::string& key) {
  if (type != kArray) return scalar(c, type, key);
  const uint32_t element = c.get<uint32_t>("an array's type");
  const uint64_t count = c.get<uint64_t>("an array's length");
  if (element == kString) {
    std::vector<std::string> out;
    for (uint64_t i = 0; i < count; ++i) out.push_back(c.string("a string of an array"));
    return out;
  }
  if (element == kF32) {
    std::vector<float> out;
    for (uint64_t i = 0; i < count; ++i) out.push_back(c.get<float>("an array's float"));
    return out;
  }
  if (element == kI32 || element == kU32) {
    std::vector<int32_t> out;
    for (uint64_t i = 0; i < count; ++i) out.push_back(c.get<int32_t>("an array's integer"));
    return out;
  }
  c.bad(cat("key ", key, " is an array of value type ", element, ", which this reader does not take"));
}

}  // namespace

const char* type_name(TensorType type) {
  switch (type) {
    case TensorType::kF32: return "f32";
    case TensorType::kF16: return "f16";
    case TensorType::kQ8_0: return "q8_0";
    case TensorType::kBF16: return "bf16";
  }
  return "?";
}

namespace {

// roundf (half away from zero) for |v| <= 127 (q8_0's range), inline: v
// minus its truncation is exact there, so this is roundf's result to the
// bit, without a libm call per value (half of q8_0's time).
inline int round_half_away(float v) {
  int i = static_cast<int>(v);  // toward zero
  const float fraction = v - static_cast<float>(i);
  if (fraction >= 0.5f) ++i;
  else if (fraction <= -0.5f) --i;
  return i;
}

}  // namespace

void quantize_q8_0(std::span<const float> values, uint8_t* out) {
  ST_CHECK(values.size() % kQ8Block == 0, "q8_0 takes whole blocks of 32 values, got ", values.size());
  for (size_t block = 0; block < values.size() / kQ8Block; ++block) {
    const float* x = values.data() + block * kQ8Block;
    float amax = 0;
    for (size_t j = 0; j < kQ8Block; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const uint16_t scale = float_to_half(d);
    uint8_t* y = out + block * kQ8BlockBytes;
    std::memcpy(y, &scale, 2);
    for (size_t j = 0; j < kQ8Block; ++j) y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_half_away(x[j] * id)));
  }
}

std::vector<float> dequantize_q8_0(std::span<const uint8_t> bytes) {
  ST_CHECK(bytes.size() % kQ8BlockBytes == 0, "q8_0 data of ", bytes.size(), " bytes is not whole blocks");
  std::vector<float> out;
  for (size_t block = 0; block < bytes.size() / kQ8BlockBytes; ++block) {
    const uint8_t* y = bytes.data() + block * kQ8BlockBytes;
    uint16_t scale;
    std::memcpy(&scale, y, 2);
    const float d = half_to_float(scale);
    for (size_t j = 0; j < kQ8Block; ++j) out.push_back(d * static_cast<float>(static_cast<int8_t>(y[2 + j])));
  }
  return out;
}

void Metadata::set(const std::string& key, Value value) {
  for (auto& [k, v] : entries_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(key, std::move(value));
}

const Value* Metadata::find(const std::string& key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

uint64_t TensorInfo::bytes() const {
  uint64_t elements = 1;
  for (uint64_t d : shape) elements *= d;
  switch (type) {
    case TensorType::kF32: return elements * 4;
    case TensorType::kF16:
    case TensorType::kBF16: return elements * 2;
    case TensorType::kQ8_0: return elements / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

Writer::Writer(std::string path, const Metadata& metadata, std::vector<TensorInfo> tensors, uint64_t alignment)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), tensors_(std::move(tensors)), alignment_(alignment) {
  Bytes header;
  header.data = "GGUF";
  header.put<uint32_t>(kVersion);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata.entries().size());
  for (const auto& [key, value] : metadata.entries()) {
    header.string(key);
    put_value(header, value);
  }
  uint64_t offset = 0;
  for (TensorInfo& t : tensors_) {
    ST_CHECK(t.type != TensorType::kQ8_0 || (!t.shape.empty() && t.shape.back() % kQ8Block == 0), "tensor ", t.name,
             ": q8_0 rows must be whole blocks of 32");
    t.offset = offset;
    header.string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) header.put<uint64_t>(*d);  // ggml order
    header.put<uint32_t>(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(t.offset);
    offset = align_up(offset + t.bytes(), alignment_);
  }
  data_start_ = align_up(header.data.size(), alignment_);
  header.data.resize(data_start_, '\0');
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail("cannot write ", tmp_);
  out_.write(header.data.data(), static_cast<std::streamsize>(header.data.size()));
  // The file ends at an aligned offset, as gguf-py writes it.
  file_size_ = data_start_ + offset;
  flush();
  // Not sized ahead (with a hole up to its end): write() into such a hole
  // took 3.6 to 5 times as long as appending here (4.5 GB from a mapping), and
  // the read-back waits for complete() anyway.
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open ", tmp_, ": ", std::strerror(errno));
  writeback_ = std::make_unique<Writeback>(fd_);
}

Writer::~Writer() {
  if (writeback_) writeback_->stop();
  if (fd_ >= 0) ::close(fd_);
  if (finished_) return;
  out_.close();
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void Writer::write_tensor(std::span<const uint8_t> bytes) {
  ST_CHECK(next_ < tensors_.size(), "more tensors written than declared");
  ST_CHECK(written_ == 0 && bytes.size() == tensors_[next_].bytes(), "tensor ", tensors_[next_].name, ": ",
           bytes.size(), " bytes for ", tensors_[next_].bytes());
  write_tensor_part(bytes);
}

const TensorInfo& Writer::start_part() {
  ST_CHECK(next_ < tensors_.size(), "more tensor bytes written than declared");
  const TensorInfo& t = tensors_[next_];
  if (written_ == 0) {  // the padding up to the tensor's aligned offset
    const std::string padding(data_start_ + t.offset - static_cast<uint64_t>(out_.tellp()), '\0');
    out_.write(padding.data(), static_cast<std::streamsize>(padding.size()));
  }
  return t;
}

void Writer::end_part(uint64_t bytes) {
  written_ += bytes;
  if (written_ == tensors_[next_].bytes()) {
    ++next_;
    written_ = 0;
  }
}

void Writer::write_tensor_part(std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const TensorInfo& t = start_part();
    const uint64_t take = std::min<uint64_t>({bytes.size(), t.bytes() - written_, kWritePieceBytes});
    out_.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(take));
    if (!out_) fail("writing ", tmp_, " failed (disk full?) at tensor ", t.name);
    const uint64_t end = data_start_ + t.offset + written_ + take;
    bytes = bytes.subspan(take);
    end_part(take);
    written_up_to(end);
  }
}

void Writer::written_up_to(uint64_t end) {
  writeback_->appended(end, [this] { flush(); });
}

bool Writer::copy_tensor_part(int source_fd, uint64_t source_offset, uint64_t bytes) {
  const TensorInfo& t = start_part();
  ST_CHECK(written_ + bytes <= t.bytes(), "copy of ", bytes, " bytes past tensor ", t.name);
  out_.flush();
  if (!out_) fail("writing ", tmp_, " failed (disk full?) at tensor ", t.name);
  const uint64_t to = data_start_ + t.offset + written_;
  if (!kernel_copy(source_fd, source_offset, fd_, to, bytes, tmp_, Writeback::kChunkBytes,
                   [this](uint64_t end) { written_up_to(end); }))
    return false;
  out_.seekp(static_cast<std::streamoff>(to + bytes));
  end_part(bytes);
  written_up_to(to + bytes);
  return true;
}

void Writer::flush() {
  out_.flush();
  if (!out_) fail("writing ", tmp_, " failed (disk full?)");
}

void Writer::complete() {
  if (completed_) return;
  ST_CHECK(next_ == tensors_.size() && written_ == 0, next_, " of ", tensors_.size(), " tensors written");
  flush();
  // The padding after the last tensor.
  const uint64_t written = fs::file_size(tmp_);
  ST_CHECK(written <= file_size_, tmp_, " holds ", written, " bytes, more than ", file_size_);
  if (::ftruncate(fd_, static_cast<off_t>(file_size_)) != 0)
    fail("cannot size ", tmp_, " to ", file_size_, " bytes: ", std::strerror(errno));
  out_.close();
  // The disk writes already started go on (a start blocks while the
  // device's queue is full): the read-back overlaps them, and finish()'s
  // fsync waits for them anyway.
  completed_ = true;
}

void Writer::finish() {
  complete();
  writeback_->stop();
  // Durable before it takes its name, as every file we write (a failure
  // leaves fd_ to the destructor).
  sync_fd(fd_, tmp_);
  ::close(std::exchange(fd_, -1));
  fs::rename(tmp_, path_);
  finished_ = true;
}

File read(const std::string& path) {
  const MappedFile mapped(path);
  File file;
  file.file_size = mapped.size();
  if (file.file_size < 4 || std::memcmp(mapped.data(), "GGUF", 4) != 0)
    fail(path, ": not a GGUF file (the magic is not \"GGUF\")");
  Cursor c(mapped, path, 4);
  file.version = c.get<uint32_t>("the version");
  if (file.version != kVersion) fail(path, ": GGUF version ", file.version, "; this reader takes version 3");
  const uint64_t tensors = c.get<uint64_t>("the tensor count"), entries = c.get<uint64_t>("the key count");
  for (uint64_t i = 0; i < entries; ++i) {
    std::string key = c.string("a key");
    const uint32_t type = c.get<uint32_t>("a value type");
    file.metadata.set(key, value(c, type, key));
  }
  if (const Value* a = file.metadata.find("general.alignment")) {
    file.alignment = std::holds_alternative<uint32_t>(*a) ? std::get<uint32_t>(*a) : 0;
    if (file.alignment == 0 || (file.alignment & (file.alignment - 1)) != 0)
      c.bad("general.alignment must be a power of two (u32)");
  }
  for (uint64_t i = 0; i < tensors; ++i) {
    TensorInfo t;
    t.name = c.string("a tensor name");
    const uint32_t dims = c.get<uint32_t>("a tensor's dimension count");
    if (dims == 0 || dims > 4) c.bad(cat("tensor ", t.name, " has ", dims, " dimensions"));
    for (uint32_t d = 0; d < dims; ++d) t.shape.insert(t.shape.begin(), c.get<uint64_t>("a dimension"));
    const uint32_t type = c.get<uint32_t>("a tensor type");
    if (type != 0 && type != 1 && type != 8 && type != 30) c.bad(cat("tensor ", t.name, " has ggml type ", type));
    t.type = static_cast<TensorType>(type);
    t.offset = c.get<uint64_t>("a tensor offset");
    if (t.offset % file.alignment != 0)
      c.bad(cat("tensor ", t.name, "'s offset ", t.offset, " is not a multiple of the alignment ", file.alignment));
    file.tensors.push_back(std::move(t));
  }
  file.data_start = align_up(c.position(), file.alignment);
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : file.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  uint64_t end = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->offset < end) fail(path, ": tensor ", t->name, " overlaps the tensor before it");
    end = t->offset + t->bytes();
    if (file.data_start + end > file.file_size)
      fail(path, ": tensor ", t->name, " ends at byte ", file.data_start + end, ", past the file's ", file.file_size);
  }
  return file;
}

std::vector<uint8_t> read_tensor(const std::string& path, const File& file, const TensorInfo& tensor) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(file.data_start + tensor.offset));
  std::vector<uint8_t> bytes(tensor.bytes());
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    fail(path, ": cannot read tensor ", tensor.name);
  return bytes;
}

}  // namespace st::gguf
