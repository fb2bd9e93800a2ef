// Shared by the GPU benchmarks (bench_kernels, bench_train_step): median
// timing with device synchronisation, and the caching allocator's peak.
#pragma once

#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace st::bench {

/// Median time of one call of `fn` in milliseconds: `samples` samples after
/// `warmup` calls, each sample `calls_per_sample` back-to-back calls between
/// two device synchronisations (so short kernels are not timed with the
/// synchronisation's latency; the launches still are, as in training).
inline double time_ms(const std::function<void()>& fn, int samples, int warmup = 3, int calls_per_sample = 1) {
  // The CPU smoke runs of the benchmarks have nothing to synchronise.
  auto sync = [] {
    if (at::hasCUDA()) c10::cuda::device_synchronize();
  };
  for (int i = 0; i < warmup; ++i) fn();
  sync();
  std::vector<double> times;
  for (int i = 0; i < samples; ++i) {
    auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < calls_per_sample; ++c) fn();
    sync();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
                    calls_per_sample);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
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
