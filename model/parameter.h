// What every tensor of a model is for. Each module describes its tensors
// once (name, role, trainable, layer, how a fresh model fills it), and every
// consumer reads that description instead of a bare name list:
//  - load and save take the kBase tensors: exactly the Hugging Face
//    checkpoint, so an adapter never lands in the HF dir and a base
//    checkpoint loads into a model that carries adapters;
//  - init_random fills each tensor by its `init`, not by its name (only the
//    embedding's pad row is then zeroed, as transformers does);
//  - requires_grad and the optimizer take the trainable ones;
//  - activation recomputation differentiates every tensor of the layer that
//    requires grad, adapters included;
//  - later, a sharded gather per `layer`.
// The same idea as torchtune's adapter_params() and PEFT's get_base_layer().
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/named_tensors.h"

namespace st {

enum class TensorRole {
  kBase,     // a weight of the Hugging Face checkpoint: loaded from and saved to the model dir
  kAdapter,  // trained beside a base weight (LoRA, DoRA): saved with the adapter, never in the HF dir
  kBuffer,   // derived state (rotary frequencies): never loaded, saved or trained
};

/// How init_random fills a tensor.
enum class TensorInit {
  kNormal,  // normal(0, initializer_range), as transformers' _init_weights
  kZeros,   // biases; LoRA's B, so a fresh adapter changes nothing
  kOnes,    // norm weights
  kKeep,    // filled by its owner (buffers; adapters with their own scheme)
};

struct ParameterInfo {
  std::string name;  // the Hugging Face name for kBase; the module's own name otherwise
  at::Tensor tensor;
  TensorRole role = TensorRole::kBase;
  bool trainable = true;
  int64_t layer = -1;  // decoder layer index; -1 outside the layers
  TensorInit init = TensorInit::kNormal;
};
using ParameterList = std::vector<ParameterInfo>;

/// The (name, tensor) pairs of `role`, in description order.
NamedTensors tensors_with_role(const ParameterList& parameters, TensorRole role);
/// The (name, tensor) pairs marked trainable, in description order.
NamedTensors trainable_tensors(const ParameterList& parameters);

}  // namespace st
