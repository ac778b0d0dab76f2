// StateDict: tensors by dotted name, the one currency of model, optimizer, schedule and
// checkpoint state. Modules, optimizers and the checkpoint readers and writers all speak it.
#pragma once
#include <map>
#include <string>

#include "mt/core/tensor.h"

namespace mt {

// Dotted name -> tensor. Tensors share storage with the live values: clone() to snapshot.
using StateDict = std::map<std::string, Tensor>;

}  // namespace mt
