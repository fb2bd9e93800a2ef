#include "train/metrics_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st::train {

MetricsLog::MetricsLog(const std::string& run_dir, int64_t resume_step)
    : path_((std::filesystem::path(run_dir) / "metrics.jsonl").string()) {
  if (resume_step > 0 && std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string kept, line;
    while (std::getline(in, line)) {
      nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      // A line cut by the kill is not valid JSON: dropped with the later steps.
      if (record.is_discarded() || record.value("step", int64_t(0)) > resume_step) continue;
      kept += line + "\n";
      records_.push_back(std::move(record));
    }
    write_file_atomic(path_, kept);
  } else if (resume_step == 0) {
    write_file_atomic(path_, "");
  }
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail("cannot open ", path_, " for appending");
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) fail("cannot write ", path_);
  records_.push_back(record);
}

Progress::Progress(int64_t total_steps, int64_t every)
    : total_(total_steps), every_(std::max<int64_t>(1, every)), tty_(::isatty(STDERR_FILENO)) {}

void Progress::step(int64_t step, int64_t epoch, double loss, double lr, double tokens_per_s,
                    double seconds_per_step) {
  if (!tty_ && step % every_ != 0 && step != total_) return;
  const int64_t eta = static_cast<int64_t>(seconds_per_step * static_cast<double>(total_ - step));
  std::fprintf(stderr, "%sstep %lld/%lld  epoch %lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %lldm%02llds%s",
               tty_ ? "\r" : "", static_cast<long long>(step), static_cast<long long>(total_),
               static_cast<long long>(epoch), loss, lr, tokens_per_s, static_cast<long long>(eta / 60),
               static_cast<long long>(eta % 60), tty_ ? "   " : "\n");
  std::fflush(stderr);
  open_line_ = tty_;
}

void Progress::line_break() {
  if (open_line_) std::fputc('\n', stderr);
  open_line_ = false;
}

}  // namespace st::train
