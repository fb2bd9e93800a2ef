#!/usr/bin/env python3
"""The reference stack's SFT step on the GPU, for the same shape as
benchmarks/bench_train_step.cpp (not a test): transformers' LlamaForCausalLM with
a Salamandra preset's sizes and random weights, trained as TRL/transformers'
Trainer does with bf16=True (fp32 parameters, bf16 autocast, gradient
checkpointing, fused torch AdamW, gradient clipping at 1.0), on rows of
random tokens with every position trained. Prints one JSON object: median
step time, tokens/s and peak allocated memory. scripts/gpu_check.sh runs it
next to bench_train_step so both come from the same machine and run.

With --lora-rank R, PEFT's LoRA step as TRL runs it (bench_train_step
--lora-rank's reference): the base in bf16 and frozen, LoraConfig(r=R,
lora_alpha=2R, target_modules="all-linear") with PEFT's fp32 adapters, bf16
autocast, gradient checkpointing, fused AdamW on the adapters.

  bench_hf_step.py [--preset salamandra-2b|salamandra-7b] [--rows 2] [--seq 4096] [--steps 6] [--lora-rank R]
  bench_hf_step.py --smoke [--lora-rank R]   # a tiny model on the CPU: checks the script itself
"""
import argparse
import json
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU (checks the script)")
    parser.add_argument("--preset", default="salamandra-2b", choices=["salamandra-2b", "salamandra-7b"])
    parser.add_argument("--lora-rank", type=int, default=0, help="0: full SFT")
    args = parser.parse_args()
    import torch
    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        print(json.dumps({"gpu": False}))
        return 0
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    # model/config.cpp's presets.
    sizes = {"salamandra-2b": dict(hidden_size=2048, intermediate_size=5440, num_hidden_layers=24,
                                   num_attention_heads=16, num_key_value_heads=16, rms_norm_eps=1e-5),
             "salamandra-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-6)}
    config = LlamaConfig(vocab_size=256000, max_position_embeddings=8192, rope_theta=10000.0,
                         tie_word_embeddings=False, **sizes[args.preset])
    if args.smoke:
        config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False)
        args.rows, args.seq, args.steps = 2, 32, 2
    config._attn_implementation = "sdpa"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.manual_seed(0)
    with torch.device(device):
        # Full SFT: fp32 parameters, as the Trainer keeps them with bf16=True; LoRA: a bf16 base.
        model = LlamaForCausalLM(config).to(torch.bfloat16 if args.lora_rank else torch.float32)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if args.lora_rank:
        from peft import LoraConfig, get_peft_model
        model.enable_input_require_grads()  # as TRL does for checkpointing with a frozen embedding
        model = get_peft_model(model, LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=device == "cuda")
    ids = torch.randint(0, config.vocab_size, (args.rows, args.seq), device=device)

    def step() -> float:
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    step()  # warm-up
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], 0.0
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    tokens = args.rows * args.seq
    print(json.dumps({"gpu": device == "cuda", "transformers": transformers.__version__, "torch": torch.__version__,
                      "preset": "smoke" if args.smoke else args.preset, "lora_rank": args.lora_rank,
                      "rows": args.rows, "seq": args.seq, "steps": args.steps, "step_ms": round(ms, 1),
                      "tokens_per_second": round(tokens / (ms * 1e-3)), "peak_allocated_bytes":
                      torch.cuda.max_memory_allocated() if device == "cuda" else None, "last_loss": loss}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
