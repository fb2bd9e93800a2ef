// salamandra-tune export: a model dir as one GGUF file for llama.cpp and
// Ollama (export/gguf_export.h), with an Ollama Modelfile beside it.
#include <cstdio>

#include "cli/args.h"
#include "common/error.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "export/gguf_export.h"

namespace st::cli {

int run_export(int argc, char** argv) {
  gguf::ExportOptions options;
  Args args("export",
            "Writes a Llama-architecture Hugging Face model dir (with tokenizer.model) as one GGUF file in\n"
            "llama.cpp's layout, streamed tensor by tensor, then reads it back and checks every tensor; an\n"
            "Ollama Modelfile (ChatML template, stops, generation defaults) goes beside it. Norms stay f32;\n"
            "with q8_0 a row that is not a multiple of 32 values is written as f16, and export says so.");
  std::vector<std::string> adapters, weights;
  args.option("model", "DIR", "the model dir", &options.model_dir, true);
  args.repeated("adapter", "DIR", "a PEFT LoRA adapter to merge on the way, as merge does (repeat for several)",
                &adapters);
  args.repeated("weight", "W", "the weight of the adapter at the same position [default: 1 each]", &weights);
  args.option("out", "FILE", "the .gguf file to write", &options.out_path, true);
  args.option("dtype", "TYPE", "float32, float16, bfloat16 or q8_0 [default: bfloat16]", &options.dtype);
  args.flag("force", "replace an existing --out", &options.force);
  if (!args.parse(argc, argv)) return 0;
  options.adapters = weighted_adapters(adapters, weights);
  if (options.dtype != "float32" && options.dtype != "float16" && options.dtype != "bfloat16" &&
      options.dtype != "q8_0")
    throw UsageError("--dtype must be float32, float16, bfloat16 or q8_0");
  const gguf::ExportReport report = gguf::export_gguf(options);
  if (!options.adapters.empty())
    std::printf("merged %zu adapter(s) on the way into %lld tensors (fp32, one rounding)\n", options.adapters.size(),
                static_cast<long long>(report.merged_tensors));
  for (const std::string& f : report.fallbacks) std::printf("q8_0 cannot hold %s: written as f16\n", f.c_str());
  std::printf("verified %lld tensors (%.1f MB) read back from %s: header, offsets, alignment, bytes\n",
              static_cast<long long>(report.tensors), static_cast<double>(report.bytes) / 1e6,
              options.out_path.c_str());
  std::printf("Ollama Modelfile: %s\nexported: %s\n", report.modelfile.c_str(), options.out_path.c_str());
  return 0;
}

}  // namespace st::cli
