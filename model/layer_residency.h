// Where a model's weights are between uses. Normally every weight stays in
// memory; under fully sharded training (train/sharded_model.h) each process
// keeps only its shard, and the model asks for a layer's whole weights just
// before it computes with them and lets them go right after, so that at most
// one layer (plus the embedding, final norm and LM head) is whole at a time.
// The model calls acquire/release in the same order on every process, which
// is what lets an implementation make them collectives.
#pragma once

#include <cstdint>

namespace st {

class LayerResidency {
 public:
  /// The embedding, final norm and LM head (outside the decoder layers).
  static constexpr int64_t kOutside = -1;

  virtual ~LayerResidency() = default;
  /// Makes the weights of decoder layer `layer` (or kOutside) whole; a no-op
  /// when they are whole already.
  virtual void acquire(int64_t layer) = 0;
  /// Lets them go (kOutside stays until the owner releases it: the LM head
  /// is used after the decoder returns, and again in backward).
  virtual void release(int64_t layer) = 0;
};

}  // namespace st
