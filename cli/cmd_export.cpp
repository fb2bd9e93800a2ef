// salamandra-tune export: a model dir, with adapters merged on the way, as
// a complete Hugging Face dir (export/hf_export.h) or as one GGUF file for
// llama.cpp and Ollama with an Ollama Modelfile (export/gguf_export.h).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "cli/progress.h"
#include "common/error.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"

namespace st::cli {

namespace {

void print_merged(size_t adapters, int64_t tensors) {
  if (adapters > 0)
    std::printf("merged %zu adapter(s) on the way into %lld tensors (fp32, one rounding)\n", adapters,
                static_cast<long long>(tensors));
}

void export_gguf_file(const std::string& model, const std::vector<lora::WeightedAdapter>& adapters,
                      const std::string& out, const std::string& dtype, bool force) {
  gguf::ExportOptions options{model, adapters, out, dtype, force};
  options.progress = progress_printer("export", "MB", 1e6, 1);
  const gguf::ExportReport report = gguf::export_gguf(options);
  print_merged(adapters.size(), report.merged_tensors);
  for (const std::string& f : report.fallbacks) std::printf("q8_0 cannot hold %s: written as f16\n", f.c_str());
  std::printf("verified %lld tensors (%.1f MB) read back from %s: header, offsets, alignment, bytes\n",
              static_cast<long long>(report.tensors), static_cast<double>(report.bytes) / 1e6, out.c_str());
  std::printf("Ollama Modelfile: %s\nexported: %s\n", report.modelfile.c_str(), out.c_str());
}

void export_hf_dir(const std::string& model, const std::vector<lora::WeightedAdapter>& adapters,
                   const std::string& out, const std::string& dtype, int64_t max_shard_mb, bool force) {
  hf::ExportOptions options;
  options.model_dir = model;
  options.adapters = adapters;
  options.out_dir = out;
  options.dtype = written_dtype(dtype, " with --format hf (q8_0 is a GGUF type)");
  options.max_shard_bytes = shard_bytes(max_shard_mb);
  options.force = force;
  options.progress = progress_printer("export", "MB", 1e6, 1);
  const hf::ExportReport report = hf::export_hf(options);
  const lora::MergeReport& m = report.merge;
  print_merged(adapters.size(), m.merged_tensors);
  std::printf("verified %lld tensors (%.1f MB) read back from %s: headers, shapes, bytes\n",
              static_cast<long long>(m.tensors), static_cast<double>(m.bytes_verified) / 1e6, out.c_str());
  if (m.checked)
    std::printf("self-check: max |logit difference| %.3g over %lld probe tokens against the adapters applied "
                "unmerged (bound %.3g)\n",
                m.max_logit_difference, static_cast<long long>(m.probe_tokens), m.bound);
  std::printf("model card: %s/README.md (%lld training stage%s named)\nexported: %s\n", out.c_str(),
              static_cast<long long>(report.stages), report.stages == 1 ? "" : "s", out.c_str());
}

}  // namespace

int run_export(int argc, char** argv) {
  std::string model, out, format, dtype = "bfloat16";
  std::vector<std::string> adapters, weights;
  int64_t max_shard_mb = 5000;
  bool force = false;
  Args args("export",
            "Writes a Llama-architecture model dir, with LoRA adapters merged on the way (fp32, one rounding),\n"
            "for deployment, streamed in blocks of rows and read back and checked tensor by tensor:\n"
            "  --format hf    a complete Hugging Face dir for transformers and vLLM: sharded safetensors\n"
            "                 with an index, config.json, the source's generation_config.json, tokenizer\n"
            "                 files and chat template, and a README.md model card (base model, data files\n"
            "                 with SHA-256, recipe, final metrics of each training stage);\n"
            "  --format gguf  one GGUF file in llama.cpp's layout (needs tokenizer.model), with an Ollama\n"
            "                 Modelfile beside it. Norms stay f32; with q8_0 a row that is not a multiple\n"
            "                 of 32 values is written as f16, and export says so.");
  args.option("model", "DIR", "the model dir", &model, true);
  args.repeated("adapter", "DIR", "a PEFT LoRA adapter to merge on the way, as merge does (repeat for several)",
                &adapters);
  args.repeated("weight", "W", "the weight of the adapter at the same position [default: 1 each]", &weights);
  args.option("out", "PATH", "the dir (hf) or .gguf file (gguf) to write", &out, true);
  args.option("format", "F", "hf or gguf [default: gguf when --out ends in .gguf, else hf]", &format);
  args.option("dtype", "TYPE", "float32, float16, bfloat16 or (gguf) q8_0", &dtype);
  args.option("max-shard-mb", "N", "hf: shard size limit in MB (transformers' max_shard_size)", &max_shard_mb);
  args.flag("force", "replace an existing --out", &force);
  if (!args.parse(argc, argv)) return 0;
  const std::vector<lora::WeightedAdapter> merged = weighted_adapters(adapters, weights);
  if (format.empty()) format = out.ends_with(".gguf") ? "gguf" : "hf";
  if (format == "gguf") {
    if (dtype != "float32" && dtype != "float16" && dtype != "bfloat16" && dtype != "q8_0")
      throw UsageError("--dtype must be float32, float16, bfloat16 or q8_0");
    export_gguf_file(model, merged, out, dtype, force);
  } else if (format == "hf") {
    export_hf_dir(model, merged, out, dtype, max_shard_mb, force);
  } else {
    throw UsageError("--format must be hf or gguf, got " + format);
  }
  return 0;
}

}  // namespace st::cli
