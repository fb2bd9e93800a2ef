// (name, tensor) pairs: the currency between the model, checkpoint files and
// the optimizer. Header only, so st_common itself stays free of torch; only
// targets that link torch include it.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace st {

/// (Hugging Face name, tensor) pairs in checkpoint order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace st
