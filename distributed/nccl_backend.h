// NCCL's c10d backend, in a translation unit of its own: its header pulls in
// CUDA's, and only builds with CUDA (ST_WITH_CUDA) compile it.
#pragma once

#include <c10/util/intrusive_ptr.h>

#include <chrono>

namespace c10d {
class Backend;
class Store;
}  // namespace c10d

namespace st::distributed {

/// True when this build has NCCL's backend.
bool nccl_available();
/// ProcessGroupNCCL over `store` on CUDA device `device`; st::Error where the
/// build has no NCCL.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    int device, std::chrono::milliseconds timeout);

}  // namespace st::distributed
