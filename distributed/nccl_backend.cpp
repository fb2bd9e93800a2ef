#include "distributed/nccl_backend.h"

#include "common/error.h"

#ifdef ST_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace st::distributed {

#ifdef ST_WITH_NCCL
bool nccl_available() { return true; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    int device, std::chrono::milliseconds timeout) {
  // One GPU per process, chosen by LOCAL_RANK, before NCCL sees a tensor.
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}
#else
bool nccl_available() { return false; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int, int,
                                                    std::chrono::milliseconds) {
  fail("distributed.backend = \"nccl\": this build of salamandra-tune has no NCCL (it was built without CUDA)");
}
#endif

}  // namespace st::distributed
