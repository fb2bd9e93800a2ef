// A Hugging Face Llama model dir (Salamandra's) as one GGUF file for
// llama.cpp and Ollama, in llama.cpp's layout for architecture "llama", as
// its converter (convert_hf_to_gguf.py) writes one:
//  - metadata: general.*, llama.* hyperparameters, and the SentencePiece
//    tokenizer (tokenizer.ggml.model "llama": every piece with its score and
//    type, the special ids, add_bos/add_eos, the chat template);
//  - tensors token_embd, blk.N.attn_{q,k,v,output}, blk.N.ffn_{gate,up,down},
//    blk.N.{attn,ffn}_norm, output_norm, output; q and k rows permuted per
//    head as llama.cpp's converter does (Hugging Face's rotary rotates the
//    two halves of a head, ggml's adjacent pairs), k with the KV heads;
//  - f32, f16, bf16 or q8_0; norms stay f32, and a row q8_0 cannot hold
//    (length not a multiple of 32) falls back to f16, reported.
// Tensors are streamed one block of rows at a time from the memory-mapped
// safetensors (adapters merged on the way) into a temporary name that is
// renamed into place, so memory stays at one block, not one tensor (a
// tensor written exactly as stored is copied by the kernel, as cp copies);
// then our reader reads
// the file back (header, offsets, alignment, every tensor's bytes against a
// checksum taken while writing) and a mismatch removes it. An Ollama
// Modelfile goes beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lora/merged_weights.h"

namespace st::gguf {

struct ExportOptions {
  std::string model_dir;
  /// Merged on the way, as `merge` merges (W + sum w_i dW_i in fp32, one
  /// rounding), block by block (lora/merged_weights.h): no copy on disk.
  std::vector<lora::WeightedAdapter> adapters;
  std::string out_path;
  std::string dtype = "bfloat16";  // float32, float16, bfloat16, q8_0
  bool force = false;              // replace an existing out_path
  /// Called after each tensor with the bytes of tensor data written so far
  /// and in all.
  std::function<void(uint64_t written, uint64_t total)> progress;
};

struct ExportReport {
  int64_t tensors = 0;
  int64_t merged_tensors = 0;  // that carry an adapter's delta
  std::vector<std::string> fallbacks;  // tensors q8_0 could not hold, written as f16
  uint64_t bytes = 0;
  std::string modelfile;
};

ExportReport export_gguf(const ExportOptions& options);

}  // namespace st::gguf
