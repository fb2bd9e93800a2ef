// Allocation failures become user errors that say what was being allocated,
// how big, and what to lower (model/out_of_memory.h); anything else passes
// through untouched.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <new>

#include "common/error.h"
#include "model/out_of_memory.h"

namespace st {
namespace {

std::string message_of(const std::function<void()>& body) {
  try {
    guard_allocation("the test tensor", "Lower test.size.", body);
  } catch (const Error& e) {
    return e.what();
  }
  return "no st::Error";
}

TEST(OutOfMemory, TheCpuAllocatorsFailureNamesWhatAndHowBig) {
  // 2^50 floats: 4 PiB, refused by malloc at once (nothing is touched).
  const std::string what = message_of([] { at::empty({int64_t(1) << 50}, at::kFloat); });
  EXPECT_EQ(what, "out of memory while allocating the test tensor: tried to allocate 4.0 PiB. Lower test.size.");
}

TEST(OutOfMemory, CudasOutOfMemoryErrorNamesItsSize) {
  // The message CUDA's caching allocator throws, raised here without a GPU.
  const std::string what = message_of([] {
    C10_THROW_ERROR(OutOfMemoryError, "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity "
                                      "of 79.19 GiB of which 3.12 GiB is free.");
  });
  EXPECT_EQ(what, "out of memory while allocating the test tensor: tried to allocate 20.00 GiB. Lower test.size.");
}

TEST(OutOfMemory, BadAllocHasNoSizeToName) {
  EXPECT_EQ(message_of([] { throw std::bad_alloc(); }),
            "out of memory while allocating the test tensor. Lower test.size.");
}

TEST(OutOfMemory, OtherErrorsPassThroughUnchanged) {
  EXPECT_THROW(guard_allocation("x", "y", [] { return at::ones({2, 3}).matmul(at::ones({2, 3})); }), c10::Error);
  EXPECT_THROW(guard_allocation("x", "y", [] { throw InternalError("ours"); }), InternalError);
  EXPECT_EQ(guard_allocation("x", "y", [] { return 7; }), 7);
}

TEST(OutOfMemory, FormatsBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(4e12), "3.6 TiB");
}

}  // namespace
}  // namespace st
