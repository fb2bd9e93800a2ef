#include "cli/data_report.h"

#include "datasets/unrendered_fields.h"

#include <algorithm>

namespace st::cli {

std::string length_histogram(const std::vector<uint32_t>& lengths) {
  if (lengths.empty()) return "    (no sequences)\n";
  std::vector<size_t> buckets;  // bucket b holds lengths in [2^b, 2^(b+1))
  for (uint32_t length : lengths) {
    size_t b = 0;
    while ((uint64_t(2) << b) <= length) ++b;
    if (buckets.size() <= b) buckets.resize(b + 1);
    ++buckets[b];
  }
  const size_t most = *std::max_element(buckets.begin(), buckets.end());
  std::string out;
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (!buckets[b] && out.empty()) continue;
    char line[128];
    std::snprintf(line, sizeof line, "    %7llu-%-7llu %8zu ", 1ULL << b, (2ULL << b) - 1, buckets[b]);
    out += line;
    out += std::string(most ? (buckets[b] * 40 + most - 1) / most : 0, '#');
    out += "\n";
  }
  return out;
}

void print_split_report(std::FILE* out, const datasets::PrepareReport& r, const datasets::PlanStats& plan,
                        const datasets::BatchOptions& batching, const std::string& template_origin) {
  std::fprintf(out, "%s: %zu samples from %zu records (%s), %zu tokens, %zu trained (%.1f%%)\n", r.split.c_str(),
               r.samples, r.records, r.kind == datasets::SampleKind::kChat ? "chat" : "preference pairs", r.tokens,
               r.trained_tokens, r.tokens ? 100.0 * double(r.trained_tokens) / double(r.tokens) : 0.0);
  std::fprintf(out, "  truncated: %zu\n", r.truncated);
  size_t dropped = 0;
  for (const auto& [reason, count] : r.dropped) dropped += count;
  std::fprintf(out, "  dropped: %zu\n", dropped);
  for (const auto& [reason, count] : r.dropped) std::fprintf(out, "    %-36s %zu\n", reason.c_str(), count);
  if (r.kind == datasets::SampleKind::kChat) {
    std::fprintf(out, "  %s into rows of %u tokens: %zu rows, fill %.2f%%, packing efficiency (trained / slots) %.2f%%\n",
                 batching.mode == datasets::BatchMode::kPacked ? "packed" : "padded", batching.row_tokens, plan.rows,
                 100.0 * plan.fill(), 100.0 * plan.efficiency());
  }
  if (!r.cache_dir.empty())
    std::fprintf(out, "  cache: %s (%s)\n", r.cache_dir.c_str(),
                 r.reused ? "reused" : cat("built in ", r.seconds, " s").c_str());
  for (const std::string& warning : datasets::unrendered_warnings(r.unrendered, r.split, template_origin))
    std::fprintf(stderr, "%s\n", warning.c_str());
}

}  // namespace st::cli
