#pragma once
// The numbers of TFLite's FlatBuffer schema that this project reads (core/tflite/tflite_model.cc) and that
// its test writer writes back (tests/testing/tflite_writer.cc): field numbers are declaration order in the
// schema's tables, union and enum values their declaration order. One table of them, so the two agree.

#include <cstdint>

#include "core/tflite/tflite_model.h"

namespace veriface::tflite_schema {

namespace field {
constexpr int kModelVersion = 0, kModelOperatorCodes = 1, kModelSubgraphs = 2, kModelBuffers = 4;
constexpr int kCodeDeprecatedBuiltin = 0, kCodeVersion = 2, kCodeBuiltin = 3;
constexpr int kSubgraphTensors = 0, kSubgraphInputs = 1, kSubgraphOutputs = 2, kSubgraphOperators = 3;
constexpr int kTensorShape = 0, kTensorType = 1, kTensorBuffer = 2, kTensorName = 3;
constexpr int kBufferData = 0, kBufferOffset = 1, kBufferSize = 2;
constexpr int kOpCodeIndex = 0, kOpInputs = 1, kOpOutputs = 2, kOpOptionsType = 3, kOpOptions = 4;
}  // namespace field

constexpr uint32_t kSchemaVersion = 3;
constexpr uint8_t kConv2dOptionsType = 1;  // members of the BuiltinOptions union
constexpr uint8_t kDepthwiseConv2dOptionsType = 2;
constexpr int32_t kFloat32 = 0;  // TensorType

// CONV_2D and DEPTHWISE_CONV_2D keep the same options under different field numbers: depthwise has its
// depth_multiplier at 3, before the activation (-1: no such field).
struct ConvOptionFields {
  int padding, stride_w, stride_h, depth_multiplier, activation, dilation_w, dilation_h;
};
constexpr ConvOptionFields ConvFields(bool depthwise) {
  return depthwise ? ConvOptionFields{0, 1, 2, 3, 4, 5, 6} : ConvOptionFields{0, 1, 2, -1, 3, 4, 5};
}

// ActivationFunctionType, in schema order (NONE, RELU, RELU_N1_TO_1, RELU6, TANH); later ones are kOther.
constexpr TfliteActivation kActivations[] = {TfliteActivation::kNone, TfliteActivation::kRelu,
                                             TfliteActivation::kReluN1To1, TfliteActivation::kRelu6,
                                             TfliteActivation::kTanh};
constexpr int8_t kFirstOtherActivation = 5;

inline TfliteActivation ActivationFromCode(int8_t code) {
  return code >= 0 && code < kFirstOtherActivation ? kActivations[code] : TfliteActivation::kOther;
}
inline int8_t ActivationCode(TfliteActivation a) {
  for (int8_t i = 0; i < kFirstOtherActivation; ++i) {
    if (kActivations[i] == a) return i;
  }
  return kFirstOtherActivation;
}

}  // namespace veriface::tflite_schema
