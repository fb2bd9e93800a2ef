#include "dpo/pair_batch.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <memory>
#include <vector>

#include "common/error.h"
#include "model/document_mask.h"

namespace st::dpo {

train::SampleRows pair_rows(const datasets::TokenCache& cache) {
  ST_CHECK(cache.sequences_per_sample() == 3, "pair rows need a preference cache");
  const size_t pairs = cache.sequences() / 3;
  train::SampleRows rows;
  rows.lengths.reserve(pairs);
  for (size_t p = 0; p < pairs; ++p)
    rows.lengths.push_back(cache.length(3 * p) + cache.length(3 * p + 1) + cache.length(3 * p + 2));
  for (uint32_t length : rows.lengths) rows.row_tokens = std::max(rows.row_tokens, length);
  // materialize() asks for a sample's ids and then its mask before the
  // next sample, so one buffer each serves every call.
  struct Buffers {
    datasets::TokenCache cache;
    std::vector<uint32_t> ids;
    std::vector<uint8_t> mask;
  };
  auto buffers = std::make_shared<Buffers>(Buffers{cache, {}, {}});
  rows.view.ids = [buffers](uint32_t p) {
    auto& ids = buffers->ids;
    ids.clear();
    for (size_t s = 0; s < 3; ++s) {
      const auto part = buffers->cache.ids(3 * size_t(p) + s);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    return std::span<const uint32_t>(ids);
  };
  rows.view.mask = [buffers](uint32_t p) {
    auto& mask = buffers->mask;
    mask.assign(buffers->cache.length(3 * size_t(p)), 0);  // the prompt
    for (size_t s = 1; s < 3; ++s) {
      const uint8_t side = s == 1 ? kChosen : kRejected;
      for (uint8_t trained : buffers->cache.mask(3 * size_t(p) + s))
        mask.push_back(static_cast<uint8_t>(side | (trained ? kTrained : 0)));
    }
    return std::span<const uint8_t>(mask);
  };
  return rows;
}

PairTensors pair_tensors(const datasets::Batch& batch, const at::Device& device, bool score_prompts) {
  PairTensors t;
  const int64_t rows = batch.rows, cols = batch.cols;
  std::vector<int64_t> positions(size_t(rows * cols), 0), segments(size_t(rows * cols), 0);
  std::vector<int64_t> targets, target_rows, target_slot;
  std::vector<int64_t> prompt_targets, prompt_rows, prompt_pair;  // slots known once the pairs are counted
  std::vector<float> side_tokens;  // 2 per pair: trained chosen, rejected tokens
  int64_t pair = -1;
  for (int64_t r = 0; r < rows; ++r) {
    int32_t document = -1;
    int64_t prompt_length = 0, last_prompt = -1, last_chosen = -1, last_rejected = -1, in_chosen = 0, in_rejected = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t at = size_t(r * cols + c);
      if (batch.document[at] < 0) continue;
      if (batch.document[at] != document) {  // a new pair
        document = batch.document[at];
        ++pair;
        side_tokens.resize(2 * static_cast<size_t>(pair + 1), 0.0f);
        prompt_length = in_chosen = in_rejected = 0;
        last_prompt = last_chosen = last_rejected = -1;
      }
      const uint8_t code = batch.loss_mask[at];
      const int64_t flat = r * cols + c;
      int64_t predictor = -1;
      if ((code & kChosen) != 0) {
        predictor = last_chosen >= 0 ? last_chosen : last_prompt;
        positions[at] = prompt_length + in_chosen++;
        last_chosen = flat;
        segments[at] = kChosen;
      } else if ((code & kRejected) != 0) {
        predictor = last_rejected >= 0 ? last_rejected : last_prompt;
        positions[at] = prompt_length + in_rejected++;
        last_rejected = flat;
        segments[at] = kRejected;
      } else {
        ST_CHECK(in_chosen == 0 && in_rejected == 0, "a prompt token after a completion in a pair row");
        positions[at] = prompt_length++;
        if (score_prompts && last_prompt >= 0) {
          prompt_targets.push_back(batch.ids[at]);
          prompt_rows.push_back(last_prompt);
          prompt_pair.push_back(pair);
        }
        last_prompt = flat;
      }
      if ((code & kTrained) == 0) continue;
      ST_CHECK(predictor >= 0, "a trained completion token without a prompt before it");
      targets.push_back(batch.ids[at]);
      target_rows.push_back(predictor);
      const int64_t slot = 2 * pair + ((code & kRejected) != 0 ? 1 : 0);
      target_slot.push_back(slot);
      side_tokens[static_cast<size_t>(slot)] += 1;
    }
  }
  t.pairs = pair + 1;
  t.completion_targets = static_cast<int64_t>(targets.size());
  for (size_t i = 0; i < prompt_targets.size(); ++i) {
    targets.push_back(prompt_targets[i]);
    target_rows.push_back(prompt_rows[i]);
    target_slot.push_back(2 * t.pairs + prompt_pair[i]);
  }
  ST_CHECK(t.pairs == static_cast<int64_t>(batch.sequences.size()), "pair rows: ", t.pairs, " documents for ",
           batch.sequences.size(), " pairs");
  auto grid = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).view({rows, cols}); };
  auto ints = [&](const std::vector<int32_t>& v) { return at::tensor(v, at::kInt).to(at::kLong).view({rows, cols}); };
  t.ids = ints(batch.ids).to(device);
  t.position_ids = grid(positions).to(device);
  // Causal within each pair, and a rejected token never sees a chosen one.
  const at::Tensor segment = grid(segments);
  const at::Tensor rejected_sees_chosen =
      segment.eq(kRejected).unsqueeze(2).logical_and(segment.eq(kChosen).unsqueeze(1)).unsqueeze(1);
  t.attention_mask =
      document_attention_mask(ints(batch.document)).logical_and(rejected_sees_chosen.logical_not()).to(device);
  t.targets = at::tensor(targets, at::kLong).to(device);
  t.target_rows = at::tensor(target_rows, at::kLong).to(device);
  t.target_slot = at::tensor(target_slot, at::kLong).to(device);
  t.tokens = at::tensor(side_tokens, at::kFloat).view({t.pairs, 2}).to(device);
  return t;
}

namespace {

// The mean over the vocabulary of W's rows, in fp32, a chunk of rows at a
// time (no fp32 copy of W): h . mean_v(W_v) is the mean logit of h.
at::Tensor mean_row(const at::Tensor& weight) {
  at::NoGradGuard no_grad;
  at::Tensor sum = at::zeros({weight.size(1)}, weight.options().dtype(at::kFloat));
  const int64_t chunk = 16384;
  for (int64_t v = 0; v < weight.size(0); v += chunk)
    sum += weight.slice(0, v, std::min(weight.size(0), v + chunk)).sum(0, false, at::kFloat);
  return sum / static_cast<double>(weight.size(0));
}

}  // namespace

PairLogps pair_logps(const LlamaModel& model, const PairTensors& t, int64_t chunk_rows, const WeightGradSink& sink,
                     bool logit_sums) {
  ForwardOptions options;
  options.position_ids = t.position_ids;
  options.attention_mask = t.attention_mask;
  const at::Tensor hidden = model.hidden_states(t.ids, options);
  const at::Tensor scored = hidden.reshape({-1, hidden.size(-1)}).index_select(0, t.target_rows);
  const at::Tensor log_probs = target_log_probs(scored, model.lm_head_weight(), t.targets, chunk_rows, sink);
  const bool prompts = t.targets.size(0) > t.completion_targets;
  const at::Tensor all_slots =
      at::zeros({(prompts ? 3 : 2) * t.pairs}, log_probs.options()).index_add(0, t.target_slot, log_probs);
  PairLogps out;
  const at::Tensor by_pair = all_slots.slice(0, 0, 2 * t.pairs).view({t.pairs, 2});
  if (prompts) out.prompt = all_slots.slice(0, 2 * t.pairs);
  out.chosen = by_pair.select(1, 0);
  out.rejected = by_pair.select(1, 1);
  const at::Tensor tokens = t.tokens.to(log_probs.scalar_type());
  out.chosen_tokens = tokens.select(1, 0);
  out.rejected_tokens = tokens.select(1, 1);
  if (logit_sums) {
    at::NoGradGuard no_grad;
    const at::Tensor completion_slots = t.target_slot.slice(0, 0, t.completion_targets);
    const at::Tensor mean_logits = at::matmul(scored.detach().slice(0, 0, t.completion_targets).to(at::kFloat),
                                              mean_row(model.lm_head_weight()));
    const at::Tensor sides = at::zeros({2 * t.pairs}, mean_logits.options())
                                 .index_add(0, completion_slots, mean_logits)
                                 .view({t.pairs, 2})
                                 .sum(0)
                                 .to(at::kDouble);
    out.chosen_logit_sum = sides[0].item<double>();
    out.rejected_logit_sum = sides[1].item<double>();
  }
  return out;
}

std::pair<double, double> score_pair(const LlamaModel& model, const datasets::TokenPair& pair, int64_t chunk_rows) {
  datasets::Batch batch;
  batch.rows = 1;
  batch.sequences = {0};
  auto add = [&](const std::vector<int32_t>& ids, const std::vector<uint8_t>* mask, uint8_t side) {
    for (size_t i = 0; i < ids.size(); ++i) {
      batch.ids.push_back(ids[i]);
      batch.loss_mask.push_back(mask ? static_cast<uint8_t>(side | ((*mask)[i] ? kTrained : 0)) : 0);
    }
  };
  add(pair.prompt, nullptr, 0);
  add(pair.chosen.ids, &pair.chosen.mask, kChosen);
  add(pair.rejected.ids, &pair.rejected.mask, kRejected);
  batch.cols = static_cast<int64_t>(batch.ids.size());
  batch.position_ids.assign(batch.ids.size(), 0);  // pair_tensors() lays positions out itself
  batch.document.assign(batch.ids.size(), 0);
  at::NoGradGuard no_grad;
  const PairLogps p = pair_logps(model, pair_tensors(batch, model.options().device()), chunk_rows, {}, false);
  return {p.chosen.item<double>(), p.rejected.item<double>()};
}

}  // namespace st::dpo
