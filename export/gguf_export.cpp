#include "export/gguf_export.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/serial_worker.h"
#include "datasets/chat_template.h"
#include "export/gguf_file.h"
#include "lora/merged_weights.h"
#include "model/config.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace st::gguf {
namespace {

// general.file_type: llama.cpp's LLAMA_FTYPE_* for the bulk of the tensors.
uint32_t file_type(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 0;
    case TensorType::kF16: return 1;
    case TensorType::kQ8_0: return 7;
    case TensorType::kBF16: return 32;
  }
  return 0;
}

TensorType tensor_type(const std::string& dtype) {
  if (dtype == "float32") return TensorType::kF32;
  if (dtype == "float16") return TensorType::kF16;
  if (dtype == "bfloat16") return TensorType::kBF16;
  if (dtype == "q8_0") return TensorType::kQ8_0;
  fail("--dtype ", dtype, ": use float32, float16, bfloat16 or q8_0");
}

// A Hugging Face tensor and the GGUF tensor it becomes.
struct Mapped {
  std::string hf, gguf;
  int permute_heads = 0;  // q: the heads, k: the KV heads; 0: as stored
};

std::vector<Mapped> tensor_map(const ModelConfig& c) {
  // The two largest first (a 2B model's embedding and head are a quarter
  // of it each): each tensor is read back while the next ones are written,
  // so the last one's read-back is what the export waits for.
  std::vector<Mapped> out{{"model.embed_tokens.weight", "token_embd.weight"}};
  // A tied head is the embedding: llama.cpp uses token_embd when output is absent.
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", "output.weight"});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string hf = cat("model.layers.", l, "."), g = cat("blk.", l, ".");
    out.push_back({hf + "input_layernorm.weight", g + "attn_norm.weight"});
    out.push_back({hf + "self_attn.q_proj.weight", g + "attn_q.weight", static_cast<int>(c.num_attention_heads)});
    out.push_back({hf + "self_attn.k_proj.weight", g + "attn_k.weight", static_cast<int>(c.num_key_value_heads)});
    out.push_back({hf + "self_attn.v_proj.weight", g + "attn_v.weight"});
    out.push_back({hf + "self_attn.o_proj.weight", g + "attn_output.weight"});
    out.push_back({hf + "post_attention_layernorm.weight", g + "ffn_norm.weight"});
    out.push_back({hf + "mlp.gate_proj.weight", g + "ffn_gate.weight"});
    out.push_back({hf + "mlp.up_proj.weight", g + "ffn_up.weight"});
    out.push_back({hf + "mlp.down_proj.weight", g + "ffn_down.weight"});
  }
  out.push_back({"model.norm.weight", "output_norm.weight"});
  return out;
}

// llama.cpp's converter reorders each head's q/k rows from Hugging Face's
// rotate-half layout to GGML's interleaved pairs: [2, d/2] -> [d/2, 2].
at::Tensor permute_rows(const at::Tensor& w, int heads) {
  const int64_t rows = w.size(0);
  return w.reshape({heads, 2, rows / heads / 2, w.size(1)}).transpose(1, 2).reshape(w.sizes()).contiguous();
}

// The safetensors dtype of a GGUF float type (which export copies unchanged
// when the source stores it so).
safetensors::DType stored_dtype(TensorType type) {
  switch (type) {
    case TensorType::kF32: return safetensors::DType::F32;
    case TensorType::kF16: return safetensors::DType::F16;
    case TensorType::kBF16: return safetensors::DType::BF16;
    case TensorType::kQ8_0: break;
  }
  ST_CHECK(false, "q8_0 has no safetensors dtype");
}

std::string modelfile(const std::string& gguf_name, const std::string& model_dir) {
  // ChatML as Ollama's Go template, the stops, and the generation defaults.
  std::string text = cat("FROM ./", gguf_name, "\n",
                         "TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                         "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
                         "<|im_start|>assistant\n\"\"\"\n",
                         "PARAMETER stop \"<|im_end|>\"\nPARAMETER stop \"</s>\"\n");
  const fs::path generation = fs::path(model_dir) / "generation_config.json";
  if (!fs::exists(generation)) return text;
  std::ifstream in(generation);
  nlohmann::json g;
  try {
    g = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(generation.string(), ": not valid JSON (", e.what(), ")");
  }
  const std::pair<const char*, const char*> names[] = {
      {"temperature", "temperature"}, {"top_p", "top_p"}, {"top_k", "top_k"},
      {"repetition_penalty", "repeat_penalty"}};
  for (const auto& [hf, ollama] : names)
    if (g.contains(hf) && g[hf].is_number()) text += cat("PARAMETER ", ollama, " ", g[hf].dump(), "\n");
  return text;
}

// LibTorch's intra-op thread count, set for a scope.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads) : saved_(at::get_num_threads()) { at::set_num_threads(threads); }
  ~IntraOpThreads() { at::set_num_threads(saved_); }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int saved_;
};

// Reads the written file's header back with our own reader: the tensors in
// the order, layout and at the offsets the writer gave them (where their
// bytes were checked), where the data starts, and the tokenizer present.
void read_back_header(const Writer& writer, const std::string& out_path) {
  const File back = read(writer.temp_path());
  const std::vector<TensorInfo>& layout = writer.tensors();
  if (back.tensors.size() != layout.size()) fail(out_path, ": reads back ", back.tensors.size(), " tensors");
  for (size_t i = 0; i < layout.size(); ++i) {
    const TensorInfo& t = back.tensors[i];
    if (t.name != layout[i].name || t.shape != layout[i].shape || t.type != layout[i].type ||
        t.offset != layout[i].offset)
      fail(out_path, ": tensor ", i, " reads back as ", t.name, " (", type_name(t.type), ") at offset ", t.offset);
  }
  if (back.data_start != writer.data_start())
    fail(out_path, ": the tensor data reads back at ", back.data_start, ", written at ", writer.data_start());
  if (!back.metadata.find("tokenizer.ggml.tokens")) fail(out_path, ": the tokenizer did not read back");
}

// Reads a written tensor's bytes back from the file (mapped at its final
// size while it grows) against the checksum of the bytes handed to the
// writer.
void read_back_tensor(const MappedFile& mapped, const Writer& writer, size_t i, const Checksum& checksum,
                      const std::string& out_path) {
  const TensorInfo& t = writer.tensors()[i];
  if (checksum_hex(mapped, static_cast<size_t>(writer.data_start() + t.offset), t.bytes()) != checksum.hex())
    fail(out_path, ": tensor ", t.name, " reads back other bytes");
}

}  // namespace

ExportReport export_gguf(const ExportOptions& options) {
  const TensorType bulk = tensor_type(options.dtype);
  if (fs::exists(options.out_path) && !options.force)
    fail(options.out_path, ": exists; choose another --out or pass --force to replace it");
  // The weights, with the adapters merged block by block on the way
  // (load_model_config refuses any model_type but "llama").
  lora::MergedWeights weights(options.model_dir, options.adapters);
  const ModelConfig& config = weights.config();
  // The tokenizer and generation defaults as merge carries them: from the
  // first adapter that has them, else the model dir.
  const std::string tokenizer_dir = lora::tokenizer_source(options.model_dir, options.adapters);
  const fs::path config_path = fs::path(options.model_dir) / "config.json";
  if (config.attention_bias || config.mlp_bias || config.rope_linear_factor != 1.0)
    fail(config_path.string(), ": biases or rope scaling, which this exporter does not write");
  const fs::path spm_path = fs::path(tokenizer_dir) / "tokenizer.model";
  if (!fs::exists(spm_path))
    fail(tokenizer_dir, ": no tokenizer.model; GGUF's \"llama\" tokenizer is the SentencePiece model's pieces, "
         "scores and types (a tokenizer.json alone cannot be expressed)");
  const SpmModel spm = parse_spm_model(read_file(spm_path.string()), spm_path.string());
  if (spm.model_type != 2 && spm.model_type != 1)
    fail(spm_path.string(), ": SentencePiece model type ", spm.model_type, " (llama.cpp's SPM tokenizer takes BPE or unigram)");
  if (static_cast<int64_t>(spm.pieces.size()) > config.vocab_size)
    fail(spm_path.string(), ": ", spm.pieces.size(), " pieces for a vocabulary of ", config.vocab_size);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_dir);

  Metadata m;
  m.set("general.architecture", std::string("llama"));
  m.set("general.name", fs::path(options.model_dir).filename().string());
  m.set("general.file_type", file_type(bulk));
  if (bulk == TensorType::kQ8_0) m.set("general.quantization_version", uint32_t{2});
  m.set("llama.context_length", static_cast<uint32_t>(config.max_position_embeddings));
  m.set("llama.embedding_length", static_cast<uint32_t>(config.hidden_size));
  m.set("llama.block_count", static_cast<uint32_t>(config.num_hidden_layers));
  m.set("llama.feed_forward_length", static_cast<uint32_t>(config.intermediate_size));
  m.set("llama.attention.head_count", static_cast<uint32_t>(config.num_attention_heads));
  m.set("llama.attention.head_count_kv", static_cast<uint32_t>(config.num_key_value_heads));
  m.set("llama.rope.freq_base", static_cast<float>(config.rope_theta));
  m.set("llama.attention.layer_norm_rms_epsilon", static_cast<float>(config.rms_norm_eps));
  m.set("llama.rope.dimension_count", static_cast<uint32_t>(config.head_dim));
  m.set("llama.vocab_size", static_cast<uint32_t>(config.vocab_size));
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const SpmPiece& p : spm.pieces) {
    tokens.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(static_cast<int32_t>(p.type));
  }
  // Ids beyond the model's pieces (a vocabulary padded for the hardware),
  // as llama.cpp's converter names them: unused.
  for (int64_t id = static_cast<int64_t>(tokens.size()); id < config.vocab_size; ++id) {
    tokens.push_back(cat("[PAD", id, "]"));
    scores.push_back(-1000.0f);
    types.push_back(static_cast<int32_t>(SpmPieceType::kUnused));
  }
  m.set("tokenizer.ggml.model", std::string("llama"));
  m.set("tokenizer.ggml.tokens", std::move(tokens));
  m.set("tokenizer.ggml.scores", std::move(scores));
  m.set("tokenizer.ggml.token_type", std::move(types));
  m.set("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tokenizer.bos_id()));
  m.set("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokenizer.eos_id()));
  if (tokenizer.unk_id() >= 0) m.set("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(tokenizer.unk_id()));
  if (tokenizer.pad_id() >= 0) m.set("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(tokenizer.pad_id()));
  // As llama.cpp's converter writes it: the SentencePiece normalizer's dummy prefix.
  m.set("tokenizer.ggml.add_space_prefix", spm.add_dummy_prefix);
  m.set("tokenizer.ggml.add_bos_token", tokenizer.add_bos_token());
  m.set("tokenizer.ggml.add_eos_token", tokenizer.add_eos_token());
  m.set("tokenizer.chat_template", datasets::ChatTemplate::for_tokenizer(tokenizer).source());

  // The tensors: names, shapes and types are known from the headers alone.
  const std::vector<Mapped> mapping = tensor_map(config);
  ExportReport report;
  std::vector<TensorInfo> infos;
  std::vector<const lora::MergedWeights::Entry*> entries;
  for (const Mapped& t : mapping) {
    const lora::MergedWeights::Entry* entry = weights.find(t.hf);
    if (!entry) fail(options.model_dir, ": no tensor ", t.hf, " in its safetensors");
    entries.push_back(entry);
    if (entry->adapters) ++report.merged_tensors;
    TensorInfo info{t.gguf, {}, bulk};
    for (int64_t d : entry->info->shape) info.shape.push_back(static_cast<uint64_t>(d));
    if (info.shape.size() == 1) info.type = TensorType::kF32;  // norms stay f32, as llama.cpp keeps them
    if (info.type == TensorType::kQ8_0 && info.shape.back() % kQ8Block != 0) {
      info.type = TensorType::kF16;
      report.fallbacks.push_back(cat(t.gguf, " (rows of ", info.shape.back(), ")"));
    }
    infos.push_back(std::move(info));
  }

  // A tensor written exactly as stored is copied by the kernel (and hashed
  // from the source meanwhile, on `hasher`); any other is streamed in blocks
  // of rows: merged (with adapters) in fp32, permuted (whole heads per
  // block), converted with one rounding, hashed, written. Each tensor's
  // bytes are read back from the file against its checksum on `hasher`
  // while the next ones are written; then the header with our own reader
  // (offsets, layout) while the file goes to disk, and it takes its name.
  // Reading back after the last tensor instead, the 2B bf16 export took
  // 3.32 s (median of 5, cp 1.48 s) where it now takes 3.00 s, and 2.92 s
  // with the head moved first (tensor_map).
  if (const fs::path parent = fs::path(options.out_path).parent_path(); !parent.empty()) fs::create_directories(parent);
  std::vector<Checksum> checksums(infos.size());
  Writer writer(options.out_path, m, infos);
  const MappedFile mapped(writer.temp_path(), writer.file_size());
  const int threads = at::get_num_threads();
  {
    SerialWorker hasher;
    at::NoGradGuard no_grad;
    // Only quantizing and merging adapters gain from LibTorch's threads.
    // Otherwise the few operations (q/k's permutation, the norms) run on
    // this thread: after each, the idle OpenMP threads spin, and beside the
    // kernel's copy and the hasher on two cores that spinning was 8% of the
    // samples of a bf16 export.
    const IntraOpThreads one_thread(bulk == TensorType::kQ8_0 || !options.adapters.empty() ? threads : 1);
    // Each tensor is read back on `hasher` once written, after its source's
    // checksum there, while the next ones are written.
    uint64_t written = 0, total = 0;
    for (const TensorInfo& info : infos) total += info.bytes();
    auto tensor_written = [&](size_t i) {
      writer.flush();
      hasher.post([&, i] { read_back_tensor(mapped, writer, i, checksums[i], options.out_path); });
      written += infos[i].bytes();
      if (options.progress) options.progress(written, total);
    };
    for (size_t i = 0; i < mapping.size(); ++i) {
      const TensorInfo& info = infos[i];
      const int64_t rows = static_cast<int64_t>(info.shape[0]);
      const int64_t row_values = static_cast<int64_t>(info.shape.size() == 1 ? 1 : info.shape[1]);
      const int heads = mapping[i].permute_heads;
      Checksum& checksum = checksums[i];
      if (!heads && info.type != TensorType::kQ8_0 &&
          weights.write_unchanged(
              *entries[i], stored_dtype(info.type), checksum, hasher,
              [&](int fd, uint64_t offset, uint64_t bytes) { return writer.copy_tensor_part(fd, offset, bytes); },
              [&](const void* data, size_t bytes) {
                writer.write_tensor_part({static_cast<const uint8_t*>(data), bytes});
              })) {
        report.bytes += info.bytes();
        tensor_written(i);
        continue;
      }
      for (const auto& [begin, end] : lora::row_blocks(rows, row_values * 4, heads ? rows / heads : 1)) {
        at::Tensor w = weights.rows(*entries[i], begin, end);
        if (heads) w = permute_rows(w, static_cast<int>((end - begin) / (rows / heads)));
        std::span<const uint8_t> bytes;
        at::Tensor converted;
        std::vector<uint8_t> quantized;
        if (info.type == TensorType::kQ8_0) {
          converted = w.to(at::kFloat).contiguous();
          quantized.resize(static_cast<size_t>(converted.numel()) / kQ8Block * kQ8BlockBytes);
          // Rows quantize independently: split over the threads.
          const float* values = converted.data_ptr<float>();
          const int64_t row_out = row_values / static_cast<int64_t>(kQ8Block) * static_cast<int64_t>(kQ8BlockBytes);
          at::parallel_for(0, end - begin, 64, [&](int64_t first, int64_t last) {
            quantize_q8_0(std::span<const float>(values + first * row_values, static_cast<size_t>((last - first) * row_values)),
                          quantized.data() + first * row_out);
          });
          bytes = quantized;
        } else {
          // One rounding from the stored (or merged fp32) values.
          converted = w.to(info.type == TensorType::kF32   ? at::kFloat
                           : info.type == TensorType::kF16 ? at::kHalf
                                                           : at::kBFloat16)
                          .contiguous();
          bytes = std::span<const uint8_t>(static_cast<const uint8_t*>(converted.data_ptr()), converted.nbytes());
        }
        checksum.update(bytes.data(), bytes.size());
        writer.write_tensor_part(bytes);
        report.bytes += bytes.size();
      }
      weights.release(*entries[i]);
      tensor_written(i);
    }
    hasher.finish();
  }
  writer.complete();
  {
    std::future<void> synced = std::async(std::launch::async, [&writer] { sync_file(writer.temp_path()); });
    read_back_header(writer, options.out_path);
    synced.get();
  }
  writer.finish();  // its own fsync finds nothing left to write
  report.tensors = static_cast<int64_t>(infos.size());
  report.modelfile = (fs::path(options.out_path).parent_path() / "Modelfile").string();
  write_file_atomic(report.modelfile, modelfile(fs::path(options.out_path).filename().string(), tokenizer_dir));
  return report;
}

}  // namespace st::gguf
