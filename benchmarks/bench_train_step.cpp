// End-to-end benchmark of one SFT optimizer step on the GPU, with the fused
// kernels off and on in the same process (not a test: it asserts nothing):
// a preset's model in bf16 with random weights, fp32 master weights, AdamW,
// activation checkpointing, and rows of random tokens, trained through the
// same code as `salamandra-tune sft` (train::summed_nll, train::optimizer_step, the schema's default LM-head chunk).
//
//   bench_train_step [--preset salamandra-2b] [--rows 2] [--seq 4096] [--steps 6]
//                    [--no-checkpointing] [--lora-rank R] > bench_train_step.json
//
// With --lora-rank the step is LoRA SFT's (the LoRA issue's GPU figure): the
// bf16 base frozen, fp32 adapters of rank R and alpha 2R on every
// projection (lora/adapter.h, the fused lora_projection op), AdamW on the
// adapters only; the FLOP count is then 4 x frozen + 6 x adapter matmul
// parameters per token (no weight gradient for the base).
//
// Per mode: the median step time, tokens/s, model FLOP utilisation against
// the H100's 989 TFLOP/s (6 x matmul parameters per token, plus causal
// attention's 6 x layers x seq x hidden), peak allocated memory and the
// step's loss; first, the loss of one forward with the kernels off and on
// from the same weights. Without a CUDA device it says so and exits 0 with {"gpu": false}.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/fused_switch.h"
#include "model/llama.h"
#include "lora/adapter.h"
#include "model/lm_head.h"
#include "benchmarks/bench_cuda.h"
#include "train/batch_tensors.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace {

constexpr double kPeakFlops = 989e12;  // H100 SXM dense bf16

struct Options {
  std::string preset = "salamandra-2b";
  int64_t rows = 2, seq = 4096;
  int steps = 6;
  bool checkpointing = true;
  int64_t lora_rank = 0;  // 0: full SFT
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::cerr << "bench_train_step: " << argv[i] << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--preset")) o.preset = value();
    else if (!std::strcmp(argv[i], "--rows")) o.rows = std::atoll(value());
    else if (!std::strcmp(argv[i], "--seq")) o.seq = std::atoll(value());
    else if (!std::strcmp(argv[i], "--steps")) o.steps = std::atoi(value());
    else if (!std::strcmp(argv[i], "--no-checkpointing")) o.checkpointing = false;
    else if (!std::strcmp(argv[i], "--lora-rank")) o.lora_rank = std::atoll(value());
    else {
      std::cerr << "usage: bench_train_step [--preset NAME] [--rows N] [--seq N] [--steps N] [--no-checkpointing] "
                   "[--lora-rank R]\n";
      std::exit(2);
    }
  }
  if (o.rows < 1 || o.seq < 2 || o.steps < 1) {
    std::cerr << "bench_train_step: rows >= 1, seq >= 2 and steps >= 1 required\n";
    std::exit(2);
  }
  return o;
}

// Random tokens, every position trained (as a packed SFT row with train_on = all).
st::train::BatchTensors random_batch(const Options& o, int64_t vocab) {
  auto on_gpu = at::TensorOptions().device(at::kCUDA).dtype(at::kLong);
  st::train::BatchTensors t;
  t.ids = at::randint(0, vocab, {o.rows, o.seq}, on_gpu);
  t.position_ids = at::arange(o.seq, on_gpu).unsqueeze(0).expand({o.rows, o.seq}).contiguous();
  t.targets = t.ids.narrow(1, 1, o.seq - 1).reshape({-1});
  t.target_rows = (at::arange(o.rows, on_gpu).unsqueeze(1) * o.seq + at::arange(o.seq - 1, on_gpu).unsqueeze(0))
                      .reshape({-1});
  t.trained = o.rows * (o.seq - 1);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (!at::hasCUDA()) {
    std::cerr << "bench_train_step: no CUDA device here; nothing to time (run it on the GPU machine, "
                 "scripts/gpu_check.sh)\n";
    std::cout << "{\"gpu\": false}\n";
    return 0;
  }
  try {
    const st::ModelConfig config = st::ModelConfig::preset(o.preset);
    st::LlamaModel model(config, at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16));
    model.init_random(0);
    model.set_recompute_activations(o.checkpointing);
    if (o.lora_rank > 0) {
      st::lora::LoraConfig lora;
      lora.rank = o.lora_rank;
      lora.alpha = 2.0 * static_cast<double>(o.lora_rank);
      lora.target_names = {"all-linear"};
      const auto modules = st::lora::attach_adapters(model, lora, model.options().dtype(at::kFloat), "bench");
      st::lora::init_adapters(modules, lora.init, 0);
    }
    // Model FLOPs per token: 6 per trained matmul parameter, 4 per frozen one (no weight gradient).
    double matmul_flops = 0;
    model.require_grads();
    for (const st::ParameterInfo& p : model.parameters()) {
      if (p.tensor.dim() != 2 || p.name == "model.embed_tokens.weight") continue;
      matmul_flops += (p.trainable ? 6.0 : 4.0) * static_cast<double>(p.tensor.numel());
    }
    if (config.tie_word_embeddings)
      matmul_flops += (o.lora_rank > 0 ? 4.0 : 6.0) * static_cast<double>(config.vocab_size * config.hidden_size);
    const double matmul_params = matmul_flops / 6;  // reported as before: the full-SFT equivalent
    // Masters for the bf16 base's weights only; fp32 adapters update in place.
    st::train::AdamW optimizer(model.trainable_parameters(), {.lr = 1e-5}, /*master_weights=*/o.lora_rank == 0);
    at::manual_seed(0);
    const st::train::BatchTensors batch = random_batch(o, config.vocab_size);
    const double tokens = static_cast<double>(o.rows * o.seq);
    const double flops_per_token =
        matmul_flops + 6.0 * config.num_hidden_layers * static_cast<double>(o.seq) * config.hidden_size;

    // The same forward with the kernels off and on, before any update: the
    // whole model's agreement (RMSNorm, rotary, SwiGLU, cross-entropy).
    double forward_loss[2];
    {
      at::NoGradGuard no_grad;
      for (bool fused : {false, true}) {
        const st::ScopedFusedKernels scoped(fused);
        forward_loss[fused] = st::train::summed_nll(model, batch, st::kDefaultLmHeadChunk).item<double>() /
                              static_cast<double>(batch.trained);
      }
    }
    std::vector<std::string> modes;
    for (bool fused : {false, true}) {
      const st::ScopedFusedKernels scoped(fused);
      double loss = 0;
      auto step = [&] {
        st::train::StepInput input;
        input.micro_batches = 1;
        input.items = batch.trained;
        input.lm_head_weight = model.lm_head_weight_name();
        input.loss = [&](int64_t, const st::train::StepScale& scale) {
          return st::train::MicroBatchLoss{
              st::train::summed_nll(model, batch, st::kDefaultLmHeadChunk, scale.summed_loss_sink()), {}};
        };
        st::train::SingleProcess group;
        loss = st::train::optimizer_step(optimizer, group, input, 1e-5, 1.0).loss;
      };
      step();  // warm-up: allocator, cuBLAS handles, kernel loading
      c10::cuda::device_synchronize();
      c10::cuda::CUDACachingAllocator::resetPeakStats(c10::cuda::current_device());
      const double ms = st::bench::time_ms(step, o.steps, /*warmup=*/1);
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
      const double peak =
          static_cast<double>(stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak);
      char line[768];
      std::snprintf(line, sizeof line,
                    "{\"fused_kernels\": %s, \"step_ms\": %.1f, \"tokens_per_second\": %.0f, \"mfu\": %.4f, "
                    "\"peak_allocated_bytes\": %.0f, \"last_loss\": %.6f}",
                    fused ? "true" : "false", ms, tokens / (ms * 1e-3),
                    tokens * flops_per_token / (ms * 1e-3) / kPeakFlops, peak, loss);
      modes.push_back(line);
      std::cerr << line << "\n";
    }
    std::cout << "{\"gpu\": true, \"preset\": \"" << o.preset << "\", \"rows\": " << o.rows << ", \"seq\": " << o.seq
              << ", \"steps\": " << o.steps << ", \"lora_rank\": " << o.lora_rank
              << ", \"activation_checkpointing\": " << (o.checkpointing ? "true" : "false")
              << ", \"matmul_parameters\": " << matmul_params << ", \"initial_loss_kernels_off\": " << forward_loss[0]
              << ", \"initial_loss_kernels_on\": " << forward_loss[1] << ", \"modes\": [" << modes[0] << ", "
              << modes[1] << "]}\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_train_step: " << e.what() << "\n";
    std::cout << "{\"gpu\": true, \"error\": \"see stderr\"}\n";
    return 1;
  }
  return 0;
}
