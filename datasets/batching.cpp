#include "datasets/batching.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "common/error.h"

namespace st::datasets {

uint64_t Shuffler::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Shuffler::below(uint64_t bound) {
  // Rejection sampling: unbiased for any bound.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % bound;
}

std::vector<std::vector<uint32_t>> pack_best_fit_decreasing(std::span<const uint32_t> lengths, uint32_t capacity) {
  std::vector<uint32_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0u);
  // Longest first; ties by index so the result does not depend on the sort.
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<uint32_t>> bins;
  // Free space -> bins with that much free space (oldest first).
  std::multimap<uint32_t, uint32_t> by_free;
  for (uint32_t i : order) {
    const uint32_t length = lengths[i];
    ST_CHECK(length <= capacity, "sequence ", i, " of ", length, " tokens exceeds the packing budget ", capacity);
    if (length == 0) continue;
    auto it = by_free.lower_bound(length);  // the tightest bin it fits in
    uint32_t bin;
    uint32_t free;
    if (it == by_free.end()) {
      bin = static_cast<uint32_t>(bins.size());
      bins.emplace_back();
      free = capacity;
    } else {
      bin = it->second;
      free = it->first;
      by_free.erase(it);
    }
    bins[bin].push_back(i);
    if (free - length > 0) by_free.emplace(free - length, bin);
  }
  return bins;
}

std::vector<BatchLayout> plan_epoch(std::span<const uint32_t> lengths, std::span<const uint32_t> subset,
                                    const BatchOptions& options, uint64_t epoch) {
  ST_CHECK(options.rows > 0 && options.row_tokens > 0);
  Shuffler shuffler(options.seed * 0x100000001b3ULL + epoch + 1);
  std::vector<std::vector<uint32_t>> rows;
  if (options.mode == BatchMode::kPacked) {
    std::vector<uint32_t> subset_lengths(subset.size());
    for (size_t k = 0; k < subset.size(); ++k) subset_lengths[k] = lengths[subset[k]];
    rows = pack_best_fit_decreasing(subset_lengths, options.row_tokens);
    for (auto& row : rows)
      for (uint32_t& k : row) k = subset[k];
    shuffler.shuffle(rows);
  } else {
    std::vector<uint32_t> order(subset.begin(), subset.end());
    shuffler.shuffle(order);
    const size_t window =
        size_t(options.rows) * std::max<uint32_t>(1, options.accumulation) * std::max<uint32_t>(1, options.bucket_window);
    for (size_t begin = 0; begin < order.size(); begin += window) {
      auto first = order.begin() + begin;
      auto last = order.begin() + std::min(order.size(), begin + window);
      std::stable_sort(first, last, [&](uint32_t a, uint32_t b) { return lengths[a] < lengths[b]; });
    }
    for (uint32_t i : order) {
      ST_CHECK(lengths[i] <= options.row_tokens, "sequence ", i, " longer than the row limit");
      rows.push_back({i});
    }
  }
  // Padded rows were cut from length-sorted windows: shuffle whole steps so
  // a run does not see short batches first and long ones last.
  const size_t step_rows = size_t(options.rows) * std::max<uint32_t>(1, options.accumulation);
  std::vector<std::vector<std::vector<uint32_t>>> steps;
  for (size_t begin = 0; begin < rows.size(); begin += step_rows) {
    steps.emplace_back();
    for (size_t r = begin; r < std::min(rows.size(), begin + step_rows); ++r) steps.back().push_back(std::move(rows[r]));
  }
  // An incomplete last step stays last: the trainer cuts steps at every
  // `accumulation` micro-batches, which only full steps keep aligned.
  if (options.mode == BatchMode::kPadded) {
    const bool partial = !steps.empty() && steps.back().size() < step_rows;
    std::vector<std::vector<std::vector<uint32_t>>> tail;
    if (partial) {
      tail.push_back(std::move(steps.back()));
      steps.pop_back();
    }
    shuffler.shuffle(steps);
    for (auto& t : tail) steps.push_back(std::move(t));
  }
  std::vector<BatchLayout> batches;
  for (auto& step : steps)
    for (size_t begin = 0; begin < step.size(); begin += options.rows) {
      BatchLayout layout;
      for (size_t r = begin; r < std::min(step.size(), begin + options.rows); ++r)
        layout.rows.push_back(std::move(step[r]));
      batches.push_back(std::move(layout));
    }
  return batches;
}

size_t Batch::real_tokens() const {
  return static_cast<size_t>(std::count_if(document.begin(), document.end(), [](int32_t d) { return d >= 0; }));
}

size_t Batch::trained_tokens() const { return static_cast<size_t>(std::count(loss_mask.begin(), loss_mask.end(), 1)); }

namespace {
size_t row_length(const std::vector<uint32_t>& row, const SequenceView& view) {
  size_t n = 0;
  for (uint32_t i : row) n += view.ids(i).size();
  return n;
}
}  // namespace

Batch materialize(const BatchLayout& layout, const SequenceView& view, const BatchOptions& options, int32_t pad_id) {
  Batch batch;
  batch.rows = static_cast<int64_t>(layout.rows.size());
  // As wide as the longest row, in both modes: a packed row's budget
  // (max_length) bounds it but does not size it, so a large max_length over
  // short data allocates only what the data holds.
  for (const auto& row : layout.rows) batch.cols = std::max<int64_t>(batch.cols, row_length(row, view));
  ST_CHECK(batch.cols <= options.row_tokens, "a row of ", batch.cols, " tokens exceeds the row budget ",
           options.row_tokens);
  const size_t size = size_t(batch.rows) * size_t(batch.cols);
  batch.ids.assign(size, pad_id);
  batch.position_ids.assign(size, 0);
  batch.document.assign(size, -1);
  batch.loss_mask.assign(size, 0);
  for (int64_t r = 0; r < batch.rows; ++r) {
    size_t at = size_t(r) * size_t(batch.cols);
    const size_t row_end = at + size_t(batch.cols);
    int32_t doc = 0;
    for (uint32_t i : layout.rows[r]) {
      batch.sequences.push_back(i);
      auto ids = view.ids(i);
      auto mask = view.mask(i);
      ST_CHECK(at + ids.size() <= row_end, "row overflows its budget");
      for (size_t t = 0; t < ids.size(); ++t, ++at) {
        batch.ids[at] = static_cast<int32_t>(ids[t]);
        batch.position_ids[at] = static_cast<int32_t>(t);
        batch.document[at] = doc;
        // A document's first token has no predecessor in its document.
        batch.loss_mask[at] = t == 0 ? 0 : mask[t];
      }
      ++doc;
    }
  }
  return batch;
}

PlanStats plan_stats(const std::vector<BatchLayout>& plan, const SequenceView& view, const BatchOptions& options) {
  PlanStats stats;
  stats.batches = plan.size();
  for (const BatchLayout& layout : plan) {
    size_t widest = 0;
    for (const auto& row : layout.rows) {
      const size_t length = row_length(row, view);
      widest = std::max(widest, length);
      stats.tokens += length;
      for (uint32_t i : row) {
        auto mask = view.mask(i);
        stats.trained_tokens += static_cast<size_t>(std::count(mask.begin() + (mask.empty() ? 0 : 1), mask.end(), 1));
      }
    }
    stats.rows += layout.rows.size();
    const size_t cols = options.mode == BatchMode::kPacked ? options.row_tokens : widest;
    stats.slots += layout.rows.size() * cols;
  }
  return stats;
}

std::pair<std::vector<uint32_t>, std::vector<uint32_t>> split_train_eval(uint32_t count, double eval_ratio,
                                                                        uint64_t seed) {
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0u);
  Shuffler(seed ^ 0x5eed5eed5eedULL).shuffle(order);
  const size_t eval_count = static_cast<size_t>(std::llround(double(count) * eval_ratio));
  std::vector<uint32_t> eval(order.begin(), order.begin() + eval_count);
  std::vector<uint32_t> train(order.begin() + eval_count, order.end());
  std::sort(eval.begin(), eval.end());
  std::sort(train.begin(), train.end());
  return {train, eval};
}

}  // namespace st::datasets
