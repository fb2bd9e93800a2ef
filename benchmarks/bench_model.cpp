// Measurement driver for benchmarks/bench_model.py (not a test): loads a model
// dir and reports, as one JSON line, the load time and peak RSS, or the
// forward throughput (hidden states + chunked target log-probs, the work of
// `score`) and peak RSS. Each measurement runs in its own process so peak
// RSS belongs to it alone.
//   bench_model load DIR DTYPE
//   bench_model forward DIR DTYPE SEQ_LEN ITERATIONS
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "model/lm_head.h"
#include "model/model_dir.h"

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_model load DIR DTYPE | forward DIR DTYPE SEQ_LEN ITERATIONS\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2], dtype = argv[3];
  const auto type = dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  try {
    at::NoGradGuard no_grad;
    auto start = std::chrono::steady_clock::now();
    auto model = st::load_model(dir, at::TensorOptions().dtype(type));
    const double load_s = seconds_since(start);
    nlohmann::json out = {{"load_s", load_s}};
    if (mode == "forward" && argc == 6) {
      const int64_t steps = std::stoll(argv[4]), iterations = std::stoll(argv[5]);
      at::Tensor ids = at::randint(4, model->config().vocab_size, {1, steps}, at::kLong);
      auto run = [&] {
        at::Tensor hidden = model->hidden_states(ids)[0];
        return st::target_log_probs(hidden.narrow(0, 0, steps - 1), model->lm_head_weight(),
                                    ids[0].narrow(0, 1, steps - 1), st::kDefaultLmHeadChunk);
      };
      run();  // warm-up
      start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < iterations; ++i) run();
      out["tokens_per_s"] = steps * iterations / seconds_since(start);
    }
    out["peak_rss_mb"] = peak_rss_mb();
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
