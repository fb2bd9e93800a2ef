// From tokenized sequences to batches: best-fit-decreasing packing into a
// fixed token budget, or padded rows bucketed by length; a deterministic
// shuffle per (seed, epoch); the train/eval split.
//
// Plans hold only sequence indices, so an epoch's plan is cheap to rebuild
// from (lengths, options, epoch): resuming at batch k of epoch e needs no
// saved plan. Torch-free; the trainer turns a Batch into tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace st::datasets {

/// splitmix64-based generator with our own bounded draws, so a seed gives
/// the same order on every platform (std:: distributions are
/// implementation-defined).
class Shuffler {
 public:
  explicit Shuffler(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform in [0, bound).
  uint64_t below(uint64_t bound);
  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  uint64_t state_;
};

/// Bins of sequence indices: best-fit-decreasing (longest first; each goes
/// into the fullest bin it still fits in). Every length must be <= capacity.
std::vector<std::vector<uint32_t>> pack_best_fit_decreasing(std::span<const uint32_t> lengths, uint32_t capacity);

enum class BatchMode { kPacked, kPadded };

struct BatchOptions {
  BatchMode mode = BatchMode::kPacked;
  /// Packed: tokens per row (the budget). Padded: the longest allowed row.
  uint32_t row_tokens = 2048;
  /// Rows per batch (micro-batch size).
  uint32_t rows = 1;
  /// Micro-batches per optimizer step. Plans are made per step (rows x
  /// accumulation rows) and then split, so a step trains on the same rows
  /// however it is split into micro-batches.
  uint32_t accumulation = 1;
  uint64_t seed = 0;
  /// Padded mode sorts windows of rows * bucket_window samples by length
  /// before cutting them into batches: similar lengths, little padding,
  /// order still random at the window scale.
  uint32_t bucket_window = 64;
};

/// One batch as sequence indices per row.
struct BatchLayout {
  std::vector<std::vector<uint32_t>> rows;
};

/// The batches of one epoch over the sequences `subset` (indices into
/// lengths), in training order. The last batch may have fewer rows.
std::vector<BatchLayout> plan_epoch(std::span<const uint32_t> lengths, std::span<const uint32_t> subset,
                                    const BatchOptions& options, uint64_t epoch);

/// Trained tokens / (rows * row_tokens) over a plan: for packed plans the
/// denominator is the rows' budget (how well packing fills max_length), for
/// padded plans the padded size. (A materialised packed batch is only as
/// wide as its longest row.)
struct PlanStats {
  size_t batches = 0, rows = 0, tokens = 0, trained_tokens = 0, slots = 0;
  double efficiency() const { return slots ? double(trained_tokens) / double(slots) : 0; }
  double fill() const { return slots ? double(tokens) / double(slots) : 0; }
};

/// A materialised batch, row-major [rows x cols].
struct Batch {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> ids;           // pad id where no token
  std::vector<int32_t> position_ids;  // restart at 0 for every document
  std::vector<int32_t> document;      // document number within its row, -1 for padding
  std::vector<uint8_t> loss_mask;     // 1: this token is a training target (the view's mask value)
  std::vector<uint32_t> sequences;    // the sequences laid out, row by row (DPO looks up each pair's cached
                                      // reference log-probs by it)
  size_t trained_tokens() const;
  /// Tokens that are not padding.
  size_t real_tokens() const;
};

/// Token access for materialising: ids and mask of sequence i.
struct SequenceView {
  std::function<std::span<const uint32_t>(uint32_t)> ids;
  std::function<std::span<const uint8_t>(uint32_t)> mask;
};

/// Lays the rows out, cols = the longest row of the batch (never more than
/// row_tokens); shorter rows are padded at the end.
Batch materialize(const BatchLayout& layout, const SequenceView& view, const BatchOptions& options, int32_t pad_id);

/// Statistics of a whole plan.
PlanStats plan_stats(const std::vector<BatchLayout>& plan, const SequenceView& view, const BatchOptions& options);

/// Deterministic split of sequence indices [0, count) into (train, eval):
/// round(count * eval_ratio) indices chosen by the seed go to eval.
std::pair<std::vector<uint32_t>, std::vector<uint32_t>> split_train_eval(uint32_t count, double eval_ratio,
                                                                        uint64_t seed);

}  // namespace st::datasets
