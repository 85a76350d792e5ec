#pragma once
// Writes a TensorFlow Lite FlatBuffer from the reader's own structs: the inverse of TfliteModel::Parse,
// so that tests can take a real model apart, change one thing (a shape, a constant, an operator) and
// hand the importer the result, and so that the fuzzer's seeds can be small valid models.

#include <cstdint>
#include <string>
#include <vector>

#include "core/tflite/tflite_model.h"

namespace veriface::testing {

struct TfliteGraph {
  std::vector<TfliteTensor> tensors;  // a defined `value` becomes the tensor's constant buffer
  std::vector<TfliteOperator> operators;
  std::vector<int32_t> inputs, outputs;
};

TfliteGraph GraphOf(const TfliteModel& model);
std::string WriteTflite(const TfliteGraph& graph);

}  // namespace veriface::testing
