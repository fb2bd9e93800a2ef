#include "model/parameter.h"

namespace st {

NamedTensors tensors_with_role(const ParameterList& parameters, TensorRole role) {
  NamedTensors out;
  for (const ParameterInfo& p : parameters)
    if (p.role == role) out.emplace_back(p.name, p.tensor);
  return out;
}

NamedTensors trainable_tensors(const ParameterList& parameters) {
  NamedTensors out;
  for (const ParameterInfo& p : parameters)
    if (p.trainable) out.emplace_back(p.name, p.tensor);
  return out;
}

}  // namespace st
