// What prepare and inspect-data print about a split: counts, drops by
// reason, a length histogram, packing efficiency.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "datasets/batching.h"
#include "datasets/prepare.h"

namespace st::cli {

/// Prints the report of one split (and the packing plan statistics).
void print_split_report(std::FILE* out, const datasets::PrepareReport& report, const datasets::PlanStats& plan,
                        const datasets::BatchOptions& batching, const std::string& template_origin);

/// A histogram of sequence lengths in power-of-two buckets, as text lines.
std::string length_histogram(const std::vector<uint32_t>& lengths);

}  // namespace st::cli
