#include "train/run_config.h"

#include "model/lm_head.h"

#include "common/error.h"

namespace st::train {

RecipeSchema training_schema() {
  using K = KeyType;
  using enum KeyEffect;
  using Strings = std::vector<std::string>;
  RecipeSchema training = {
      {.key = "model.dtype", .type = K::kString, .default_value = std::string("bfloat16"),
       .choices = {"float32", "bfloat16"}, .affects = kResults,
       .help = "compute dtype; bfloat16 keeps fp32 master weights"},
      {.key = "model.device", .type = K::kString, .default_value = std::string("auto"),
       .choices = {"auto", "cpu", "cuda"}, .affects = kResults, .help = "auto: cuda when available"},
      {.key = "model.activation_checkpointing", .type = K::kBool, .default_value = false,
       .affects = kResults, .help = "recompute each layer's activations in backward (less memory, ~1/3 more compute)"},
      {.key = "training.output_dir", .type = K::kPath, .default_value = std::string(""),
       .help = "run dir: metrics, checkpoints, the final model (output_dir/final)"},
      {.key = "training.epochs", .type = K::kInt, .default_value = int64_t(1), .min = 1, .max = 10000,
       .affects = kResults, .resumable = true, .help = "passes over the training data (when max_steps is 0)"},
      {.key = "training.max_steps", .type = K::kInt, .default_value = int64_t(0), .min = 0,
       .affects = kResults, .resumable = true, .help = "optimizer steps; 0: epochs x steps per epoch"},
      {.key = "training.micro_batch_rows", .type = K::kInt, .default_value = int64_t(1), .min = 1, .max = 4096,
       .affects = kResults, .help = "rows (packed or padded sequences) per forward/backward"},
      {.key = "training.grad_accumulation", .type = K::kInt, .default_value = int64_t(1), .min = 1, .max = 65536,
       .affects = kResults,
       .help = "micro-batches per optimizer step; the loss is normalised by the step's trained tokens"},
      {.key = "training.max_grad_norm", .type = K::kFloat, .default_value = 1.0, .min = 0.0,
       .affects = kResults, .help = "clip gradients to this global L2 norm; 0: no clipping"},
      {.key = "training.on_nonfinite", .type = K::kString, .default_value = std::string("stop"),
       .choices = {"stop", "skip"}, .affects = kResults,
       .help = "a NaN/inf loss or gradient: stop with a message, or skip the step"},
      {.key = "training.threads", .type = K::kInt, .default_value = int64_t(0), .min = 0, .max = 1024,
       .help = "CPU threads for compute; 0: torch's default"},
      // Why this default: benchmarks/README.md (LM head).
      {.key = "training.lm_head_chunk", .type = K::kInt, .default_value = kDefaultLmHeadChunk, .min = 1,
       .affects = kResults, .help = "tokens per LM-head chunk (logits held at once: chunk x vocab)"},
      {.key = "optimizer.lr", .type = K::kFloat, .default_value = 2e-5, .min = 0.0, .affects = kResults,
       .help = "peak learning rate"},
      {.key = "optimizer.weight_decay", .type = K::kFloat, .default_value = 0.0, .min = 0.0,
       .affects = kResults, .help = "decoupled weight decay (matrices only; none on norms and biases)"},
      {.key = "optimizer.beta1", .type = K::kFloat, .default_value = 0.9, .min = 0.0, .max = 1.0, .affects = kResults,
       .help = "AdamW beta1"},
      {.key = "optimizer.beta2", .type = K::kFloat, .default_value = 0.999, .min = 0.0, .max = 1.0,
       .affects = kResults, .help = "AdamW beta2"},
      {.key = "optimizer.eps", .type = K::kFloat, .default_value = 1e-8, .min = 0.0, .affects = kResults,
       .help = "AdamW epsilon"},
      {.key = "optimizer.master_weights", .type = K::kBool, .default_value = true,
       .affects = kResults,
       .help = "bf16 models: fp32 master weights, gradients and moments (+16 B/param); false keeps all in bf16"},
      {.key = "schedule.kind", .type = K::kString, .default_value = std::string("cosine"),
       .choices = {"cosine", "linear", "constant"}, .affects = kResults, .help = "learning-rate schedule after warmup"},
      {.key = "schedule.warmup_steps", .type = K::kInt, .default_value = int64_t(0), .min = 0,
       .affects = kResults, .help = "linear warmup steps (wins over warmup_ratio when > 0)"},
      {.key = "schedule.warmup_ratio", .type = K::kFloat, .default_value = 0.0, .min = 0.0, .max = 1.0,
       .affects = kResults, .help = "warmup as a share of all steps"},
      {.key = "schedule.min_lr_ratio", .type = K::kFloat, .default_value = 0.0, .min = 0.0, .max = 1.0,
       .affects = kResults, .help = "floor of the schedule as a share of the peak lr"},
      {.key = "checkpointing.every_steps", .type = K::kInt, .default_value = int64_t(0), .min = 0,
       .help = "write a checkpoint every N steps (and at the end); 0: only at the end"},
      {.key = "checkpointing.keep_last", .type = K::kInt, .default_value = int64_t(2), .min = 0,
       .help = "checkpoints kept (oldest deleted); 0: all"},
      {.key = "logging.every_steps", .type = K::kInt, .default_value = int64_t(10), .min = 1,
       .help = "progress line interval when not on a terminal"},
      {.key = "logging.eval_every_steps", .type = K::kInt, .default_value = int64_t(0), .min = 0,
       .help = "evaluate on the held-out split every N steps (and at the end); 0: only at the end"},
      {.key = "logging.eval_max_batches", .type = K::kInt, .default_value = int64_t(0), .min = 0,
       .help = "evaluate on at most this many micro-batches; 0: all"},
      {.key = "logging.sample_prompts", .type = K::kStringList, .default_value = Strings{},
       .help = "user prompts to generate replies for at each evaluation (written to the log)"},
      {.key = "logging.sample_max_new_tokens", .type = K::kInt, .default_value = int64_t(32), .min = 1,
       .help = "length of those replies"},
      {.key = "logging.dump_batches", .type = K::kBool, .default_value = false,
       .help = "write every step's token batches to batches.jsonl (for parity tests)"},
      {.key = "logging.plot", .type = K::kBool, .default_value = true,
       .help = "draw the loss and lr curves into training.svg"},
      // Read only when started as several processes (torchrun, srun); the
      // global step equals one process's with grad_accumulation x processes.
      {.key = "distributed.mode", .type = K::kString, .default_value = std::string("ddp"),
       .choices = {"ddp", "fsdp"},
       .help = "ddp: every process holds the whole model, gradients all-reduced; fsdp: weights, gradients and optimizer "
                "state sharded across the processes, layers gathered for compute"},
      {.key = "distributed.backend", .type = K::kString, .default_value = std::string("auto"),
       .choices = {"auto", "gloo", "nccl"}, .help = "c10d backend; auto: nccl on CUDA, gloo on the CPU"},
      {.key = "distributed.bucket_mb", .type = K::kInt, .default_value = int64_t(25), .min = 1, .max = 4096,
       .help = "gradients are all-reduced in buckets of about this many MB"},
      {.key = "distributed.overlap", .type = K::kBool, .default_value = true,
       .help = "send each gradient bucket during the last backward, as soon as it is final"},
      {.key = "distributed.timeout_s", .type = K::kInt, .default_value = int64_t(600), .min = 1,
       .help = "rendezvous and collectives: a process missing this long stops the others"},
  };
  return training;
}

RunConfig run_config(const Recipe& recipe) {
  RunConfig c;
  c.data = datasets::data_config(recipe);
  c.dtype = recipe.get_string("model.dtype");
  c.device = recipe.get_string("model.device");
  c.activation_checkpointing = recipe.get_bool("model.activation_checkpointing");
  c.output_dir = recipe.get_string("training.output_dir");
  c.epochs = recipe.get_int("training.epochs");
  c.max_steps = recipe.get_int("training.max_steps");
  c.micro_batch_rows = recipe.get_int("training.micro_batch_rows");
  c.grad_accumulation = recipe.get_int("training.grad_accumulation");
  c.max_grad_norm = recipe.get_float("training.max_grad_norm");
  c.stop_on_nonfinite = recipe.get_string("training.on_nonfinite") == "stop";
  c.threads = recipe.get_int("training.threads");
  c.lm_head_chunk = recipe.get_int("training.lm_head_chunk");
  c.optimizer.lr = recipe.get_float("optimizer.lr");
  c.optimizer.weight_decay = recipe.get_float("optimizer.weight_decay");
  c.optimizer.beta1 = recipe.get_float("optimizer.beta1");
  c.optimizer.beta2 = recipe.get_float("optimizer.beta2");
  c.optimizer.eps = recipe.get_float("optimizer.eps");
  c.master_weights = recipe.get_bool("optimizer.master_weights");
  c.schedule = parse_schedule_kind(recipe.get_string("schedule.kind"));
  c.warmup_steps = recipe.get_int("schedule.warmup_steps");
  c.warmup_ratio = recipe.get_float("schedule.warmup_ratio");
  c.min_lr_ratio = recipe.get_float("schedule.min_lr_ratio");
  c.checkpoint_every = recipe.get_int("checkpointing.every_steps");
  c.keep_last = recipe.get_int("checkpointing.keep_last");
  c.log_every = recipe.get_int("logging.every_steps");
  c.eval_every = recipe.get_int("logging.eval_every_steps");
  c.eval_max_batches = recipe.get_int("logging.eval_max_batches");
  c.sample_prompts = recipe.get_list("logging.sample_prompts");
  c.sample_max_new_tokens = recipe.get_int("logging.sample_max_new_tokens");
  c.dump_batches = recipe.get_bool("logging.dump_batches");
  c.plot = recipe.get_bool("logging.plot");
  c.distributed.mode = recipe.get_string("distributed.mode");
  c.distributed.backend = recipe.get_string("distributed.backend");
  c.distributed.bucket_mb = recipe.get_int("distributed.bucket_mb");
  c.distributed.overlap = recipe.get_bool("distributed.overlap");
  c.distributed.timeout_s = recipe.get_int("distributed.timeout_s");
  if (c.output_dir.empty())
    fail("training.output_dir (", recipe.where("training.output_dir"), ") must be set: where the run is written");
  return c;
}

}  // namespace st::train
