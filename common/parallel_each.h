// Runs independent jobs of very different sizes over a few threads: each
// thread takes the next index when it finishes one. A model's tensors differ
// in size a thousandfold (the embedding is a quarter of a 2B model), so
// fixed ranges of indices, as at::parallel_for hands out, would leave a
// thread idle while another hashes the embedding.
#pragma once

#include <cstddef>
#include <functional>

namespace st {

/// fn(i) for every i in [0, n), on up to `threads` threads (the calling one
/// among them). The first exception thrown is rethrown once all have stopped.
void parallel_each(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace st
