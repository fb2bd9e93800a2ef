// One background thread running jobs in the order they were posted: export
// hashes what it copies and reads back what it wrote on this thread while
// the kernel copies the next tensor, instead of after it (on two cores the
// hashing cost as much wall time as the copy).
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace st {

class SerialWorker {
 public:
  SerialWorker();
  /// Stops after the running job; jobs not started are dropped and an error
  /// is lost (call finish() to see it).
  ~SerialWorker();
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  /// Runs `job` after every job posted before it. Once a job has thrown,
  /// the later ones are dropped.
  void post(std::function<void()> job);
  /// Waits for every posted job; rethrows the first job's exception.
  void finish();

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false, stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace st
