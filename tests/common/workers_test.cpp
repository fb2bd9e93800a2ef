// SerialWorker (jobs in order, on one thread, the first error kept) and
// parallel_each (every index once, the first error rethrown): export's
// read-back depends on both.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/parallel_each.h"
#include "common/serial_worker.h"

namespace st {
namespace {

TEST(SerialWorker, RunsJobsInPostedOrderOffTheCallingThread) {
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  SerialWorker worker;
  for (int i = 0; i < 200; ++i)
    worker.post([&, i] {
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
  worker.finish();
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  for (const std::thread::id& id : threads) {
    EXPECT_EQ(id, threads.front());
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(SerialWorker, KeepsTheFirstErrorAndDropsLaterJobs) {
  std::atomic<int> ran{0};
  SerialWorker worker;
  worker.post([&] { ++ran; });
  worker.post([] { throw std::runtime_error("first"); });
  worker.post([] { throw std::runtime_error("second"); });
  worker.post([&] { ++ran; });
  try {
    worker.finish();
    FAIL() << "finish() did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
  EXPECT_EQ(ran, 1);
  // The error was handed over: the worker takes jobs again.
  worker.post([&] { ++ran; });
  worker.finish();
  EXPECT_EQ(ran, 2);
}

TEST(SerialWorker, DestructorDropsWaitingJobsWithoutThrowing) {
  std::atomic<int> ran{0};
  {
    SerialWorker worker;
    worker.post([] { throw std::runtime_error("lost"); });
    for (int i = 0; i < 10; ++i) worker.post([&] { ++ran; });
  }
  EXPECT_EQ(ran, 0);
}

TEST(ParallelEach, RunsEveryIndexOnce) {
  for (const int threads : {1, 2, 5}) {
    std::vector<std::atomic<int>> hits(1000);
    parallel_each(hits.size(), threads, [&](size_t i) { ++hits[i]; });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << "index " << i << ", threads " << threads;
  }
  parallel_each(0, 4, [](size_t) { FAIL() << "no index in an empty range"; });
}

TEST(ParallelEach, RethrowsAnError) {
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_each(100, 2,
                             [&](size_t i) {
                               ++ran;
                               if (i == 3) throw std::runtime_error("bad tensor");
                             }),
               std::runtime_error);
  EXPECT_LT(ran, 100);  // the threads stop taking indices after an error
}

}  // namespace
}  // namespace st
