// DPO's reference log-probs: from a frozen model (a model dir, or the
// initial policy loaded again), from the policy itself with its adapters
// switched off (LoRA: no second copy of the weights), or from a cache that
// a first pass of the reference filled (dpo.precompute_reference: no
// reference model in memory while training).
//
// The cache lives beside the token cache it was computed over, named by a
// digest of that cache's key, the reference's identity (its config and
// weight files' bytes) and the dtype, so a changed input never reuses it.
// It holds float32 (chosen, rejected) per pair, written under a temporary
// name and renamed. Every process of a multi-process run reads the same
// file (TRL's precompute breaks under ZeRO-2/3: trl#2985).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/batching.h"
#include "datasets/token_cache.h"
#include "dpo/pair_batch.h"
#include "model/llama.h"

namespace st::dpo {

/// The reference's summed log-probs of a batch's pairs ([P] each, fp32, no graph).
class Reference {
 public:
  virtual ~Reference() = default;
  virtual std::pair<at::Tensor, at::Tensor> logps(const datasets::Batch& batch, const PairTensors& t,
                                                  bool evaluation) = 0;
};

/// A frozen model of its own (owned).
std::unique_ptr<Reference> model_reference(std::unique_ptr<LlamaModel> model, int64_t chunk_rows);
/// The policy with its adapters switched off for the reference's forward.
std::unique_ptr<Reference> adapters_off_reference(LlamaModel& policy, int64_t chunk_rows);
/// The policy as it is now (before training: the initial policy), for a
/// fresh run's precompute pass.
std::unique_ptr<Reference> frozen_policy_reference(LlamaModel& policy, int64_t chunk_rows);

/// A digest naming a model dir's contents: config.json and every weight file's bytes.
std::string model_identity(const std::string& dir);

/// The reference log-probs of every pair of `cache`, [pairs * 2] as
/// (chosen, rejected): read from the cache file named by (cache, identity,
/// dtype) if it exists, else computed with `make_reference()` over batches
/// of `rows` pairs, written, and returned. Prints what it did.
std::vector<float> precomputed_logps(const datasets::TokenCache& cache, const std::string& identity,
                                     at::ScalarType dtype, const at::Device& device, int64_t rows,
                                     const std::function<std::unique_ptr<Reference>()>& make_reference);

/// Reads precomputed log-probs per pair from the tables of the train and
/// the eval split (the eval table may be the train one when eval is held
/// out of the train cache).
std::unique_ptr<Reference> cached_reference(std::shared_ptr<const std::vector<float>> train,
                                            std::shared_ptr<const std::vector<float>> eval);

}  // namespace st::dpo
