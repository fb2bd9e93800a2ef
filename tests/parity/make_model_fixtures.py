#!/usr/bin/env python3
"""Reference side of the model parity tests: transformers builds tiny random
LlamaForCausalLM checkpoints and records what it computes for them.

For each case OUT/<case>/ gets:
  hf/                 the checkpoint, written by save_pretrained (one case sharded)
  expected.safetensors
    input_ids         [B, T] int64 random tokens (row 0 starts with BOS)
    logits_fp32       [B, T, V] fp32 logits of the fp32 model
    logits_bf16       [B, T, V] logits of the same weights run in bf16 (as fp32)
    logprobs_fp32     [B, T-1] log p(ids[t+1] | ids[..t]) from fp32 logits
    prompt            [P] int64 prompt for greedy generation
    greedy            [N] int64 greedy continuation (32 new tokens or up to eos)
    greedy_penalised  [N] int64 the same with repetition_penalty 1.3

Usage: make_model_fixtures.py OUT_DIR
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

# Sizes are odd on purpose: nothing may assume multiples of a block size.
CASES = {
    "mha": dict(vocab_size=331, hidden_size=48, intermediate_size=83, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0),
    "gqa": dict(vocab_size=517, hidden_size=64, intermediate_size=150, num_hidden_layers=4,
                num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=500000.0),
    "gqa_linear_rope": dict(vocab_size=297, hidden_size=40, intermediate_size=97, num_hidden_layers=2,
                            num_attention_heads=5, num_key_value_heads=1, rms_norm_eps=1e-6,
                            rope_theta=25000.0, rope_scaling={"rope_type": "linear", "factor": 2.5}),
    "bias_tied_headdim": dict(vocab_size=263, hidden_size=48, intermediate_size=71, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
                              attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
}
SHARDED = "gqa"  # saved with a small max_shard_size to exercise the index


def build(case, params, seed):
    torch.manual_seed(seed)
    config = LlamaConfig(max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                         initializer_range=0.08, **params)
    model = LlamaForCausalLM(config).eval()
    # Norm weights and biases start at 1 and 0; perturb them so a bug that
    # ignores one of them cannot pass.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for index, (case, params) in enumerate(CASES.items()):
        case_dir = os.path.join(out_dir, case)
        model = build(case, params, seed=1000 + index)
        shard = "20KB" if case == SHARDED else "5GB"
        model.save_pretrained(os.path.join(case_dir, "hf"), max_shard_size=shard)
        vocab = params["vocab_size"]
        gen = torch.Generator().manual_seed(index)
        ids = torch.randint(4, vocab, (2, 37), generator=gen)
        ids[0, 0] = 1
        with torch.no_grad():
            logits = model(ids).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            prompt = ids[0, :9]
            out = model.generate(prompt[None], max_new_tokens=32, do_sample=False, eos_token_id=2, pad_token_id=3)
            greedy = out[0, prompt.numel():]
            out = model.generate(prompt[None], max_new_tokens=32, do_sample=False, eos_token_id=2, pad_token_id=3,
                                 repetition_penalty=1.3)
            greedy_penalised = out[0, prompt.numel():]
            logits_bf16 = model.to(torch.bfloat16)(ids).logits.float()
        save_file({"input_ids": ids.contiguous(), "logits_fp32": logits.contiguous(),
                   "logits_bf16": logits_bf16.contiguous(), "logprobs_fp32": logprobs.contiguous(),
                   "prompt": prompt.clone(), "greedy": greedy.contiguous(),
                   "greedy_penalised": greedy_penalised.contiguous()},
                  os.path.join(case_dir, "expected.safetensors"))
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(sorted(CASES), f)
    print(f"wrote {len(CASES)} parity cases to {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
