// What a run shows and keeps: metrics.jsonl in the run dir (one JSON object
// per line, flushed as written) and a progress line on stderr.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace st::train {

class MetricsLog {
 public:
  /// Opens run_dir/metrics.jsonl. When resuming from `resume_step` (> 0),
  /// lines of later steps (written after that checkpoint) are dropped first,
  /// so the file reads as one uninterrupted run.
  MetricsLog(const std::string& run_dir, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);
  /// Every record written so far (this run and the kept earlier lines).
  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<nlohmann::json> records_;
};

/// "step 12/200  epoch 0  loss 2.3410  lr 3.0e-04  1234 tok/s  ETA 1m02s":
/// rewritten in place on a terminal, a plain line every `every` steps otherwise.
class Progress {
 public:
  Progress(int64_t total_steps, int64_t every);
  void step(int64_t step, int64_t epoch, double loss, double lr, double tokens_per_s, double seconds_per_step);
  /// Ends the in-place line before other output.
  void line_break();

 private:
  int64_t total_, every_;
  bool tty_;
  bool open_line_ = false;
};

}  // namespace st::train
