// Shared by the GPU benchmarks (bench_kernels, bench_train_step): median
// timing with device synchronisation, and the caching allocator's peak.
#pragma once

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace st::bench {

/// Median wall time of `fn` in milliseconds over `iterations` calls after
/// `warmup` calls, synchronising the device around each call.
inline double time_ms(const std::function<void()>& fn, int iterations, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) fn();
  c10::cuda::device_synchronize();
  std::vector<double> samples;
  for (int i = 0; i < iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    c10::cuda::device_synchronize();
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

inline int64_t allocated_bytes() {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
}

/// Bytes allocated at the peak of one call of `fn` beyond what was allocated before it.
inline int64_t peak_extra_bytes(const std::function<void()>& fn) {
  c10::cuda::device_synchronize();
  const c10::DeviceIndex device = c10::cuda::current_device();
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
  const int64_t before = allocated_bytes();
  fn();
  c10::cuda::device_synchronize();
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak - before;
}

}  // namespace st::bench
