// Token sequences and their loss masks owned by a test, seen through the
// datasets::SequenceView that batching reads (the prepared data set's role).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "datasets/batching.h"

namespace st::test {

struct OwnedSequences {
  std::vector<std::vector<uint32_t>> ids;
  std::vector<std::vector<uint8_t>> masks;
  datasets::SequenceView view() const {
    return {[this](uint32_t i) { return std::span<const uint32_t>(ids[i]); },
            [this](uint32_t i) { return std::span<const uint8_t>(masks[i]); }};
  }
};

}  // namespace st::test
