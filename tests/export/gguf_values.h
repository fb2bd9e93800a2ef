// The values gguf_file_test and gguf_write_main put into GGUF files; the
// gguf-py check (tests/parity/gguf_file_parity.py) computes the same
// formulas in numpy (float32 arithmetic on both sides).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "export/gguf_file.h"

namespace st::gguf_test {

inline std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(0.37f * static_cast<float>(i)) * static_cast<float>(1 + i % 7);
  return v;
}

inline std::vector<float> wave(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = std::cos(0.11f * static_cast<float>(i)) * (static_cast<float>(i % 13) - 6.0f);
  return v;
}

inline std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// The file both tests write: every value type, an f32 [3, 5], a q8_0
/// [2, 64] and the f32 values it quantizes (so gguf-py can quantize the
/// very same floats).
inline void write_sample(const std::string& path) {
  gguf::Metadata m;
  m.set("general.architecture", std::string("llama"));
  m.set("general.name", std::string("sample ñ"));
  m.set("test.u32", uint32_t{7});
  m.set("test.i32", int32_t{-3});
  m.set("test.u64", uint64_t{1} << 40);
  m.set("test.f32", 0.25f);
  m.set("test.bool", true);
  m.set("test.strings", std::vector<std::string>{"<s>", "▁hola", ""});
  m.set("test.floats", std::vector<float>{-1.5f, 0.0f, 2.0f});
  m.set("test.ints", std::vector<int32_t>{1, 6, 3});
  gguf::Writer w(path, m,
                 {{"ramp", {3, 5}, gguf::TensorType::kF32},
                  {"wave", {2, 64}, gguf::TensorType::kQ8_0},
                  {"wave.f32", {2, 64}, gguf::TensorType::kF32}});
  w.write_tensor(bytes_of(ramp(15)));
  const std::vector<float> values = wave(128);
  std::vector<uint8_t> q(4 * gguf::kQ8BlockBytes);
  gguf::quantize_q8_0(values, q.data());
  w.write_tensor(q);
  w.write_tensor(bytes_of(values));
  w.finish();
}

}  // namespace st::gguf_test
