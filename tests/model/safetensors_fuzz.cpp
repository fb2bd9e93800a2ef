// libFuzzer target for the safetensors reader: any byte string, written to a
// file, must either load (with every tensor's bytes inside the mapping) or be
// refused with st::Error. A crash, sanitizer report or other exception is a
// finding. The same bytes also go through read_index, the other parser of
// untrusted model-directory files.
//
// Each input is tried twice: as the raw file, and as "2-byte data size +
// header text", from which the harness builds a file with a correct length
// prefix. The second form lets the fuzzer reach the offset and layout checks
// without having to guess an 8-byte length that matches its mutations.
//
// Build (clang): clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined
//   -I. model/safetensors.cpp common/atomic_file.cpp tests/model/safetensors_fuzz.cpp
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "model/safetensors.h"

namespace {

// One scratch file per fuzzing process, rewritten for every input and
// removed at exit; /dev/shm keeps the per-input cost to a memory copy. The
// name is never destroyed so that the exit hook can still use it.
const std::string& scratch_path() {
  static const std::string* path = [] {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    auto* name = new std::string(std::string(dir) + "/st_safetensors_fuzz_" +
                                 std::to_string(::getpid()));
    std::atexit([] { std::remove(scratch_path().c_str()); });
    return name;
  }();
  return *path;
}

void write_input(const std::string& bytes) {
  std::FILE* file = std::fopen(scratch_path().c_str(), "wb");
  if (!file) std::abort();  // the harness itself is broken, not the reader
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size())
    std::abort();
  if (std::fclose(file) != 0) std::abort();
}

// Builds a well-framed file: length prefix, header text, then a data section
// whose size comes from the first two input bytes.
std::string framed(const uint8_t* data, size_t size) {
  const size_t data_size = data[0] | (size_t{data[1]} << 8);
  const std::string header(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  out += header;
  for (size_t i = 0; i < data_size; ++i) out.push_back(static_cast<char>(i * 7));
  return out;
}

void check_file(const std::string& bytes) {
  write_input(bytes);
  try {
    st::safetensors::File file(scratch_path());
    // Touch the first and last byte of each tensor: a span outside the
    // mapping would fault here.
    volatile unsigned sum = 0;
    for (const auto& t : file.tensors()) {
      if (t.nbytes == 0) continue;
      sum = sum + static_cast<unsigned>(t.data[0]) + static_cast<unsigned>(t.data[t.nbytes - 1]);
      if (t.numel() < 0) std::abort();
      file.release(t);
    }
    for (const auto& t : file.tensors())
      if (&file.at(t.name) != &t) std::abort();
  } catch (const st::Error&) {
    // A rejection. ST_CHECK's st::InternalError (our invariants broke) is not
    // an st::Error: it escapes and the fuzzer reports it as a finding.
  }
  try {
    st::safetensors::read_index(scratch_path());
  } catch (const st::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_file(std::string(reinterpret_cast<const char*>(data), size));
  if (size >= 2) check_file(framed(data, size));
  return 0;
}
