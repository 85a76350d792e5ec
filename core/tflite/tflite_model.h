#pragma once
// Reader for TensorFlow Lite model files (a FlatBuffer: the tensors, their constant buffers and the
// operator graph of the first subgraph). Only what an importer needs: float32 constants, operator codes,
// their tensor wiring and the options of the convolution operators. Every offset is bounds-checked, so a
// truncated or hostile file is an error, never a read outside the bytes.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

// The TFLite builtin operator codes this project's importers use (values from TFLite's schema).
enum class TfliteOp : int32_t {
  kAdd = 0,
  kConv2d = 3,
  kDepthwiseConv2d = 4,
  kFullyConnected = 9,
  kMul = 18,
  kRelu = 19,
  kReshape = 22,
  kSub = 41,
  kPrelu = 54,
  kAbs = 101,
};

enum class TflitePadding { kSame, kValid };
enum class TfliteActivation { kNone, kRelu, kReluN1To1, kRelu6, kTanh, kOther };

// The options CONV_2D and DEPTHWISE_CONV_2D share; zero-initialised for every other operator.
struct TfliteConvOptions {
  TflitePadding padding = TflitePadding::kSame;
  int32_t stride_h = 1;
  int32_t stride_w = 1;
  int32_t dilation_h = 1;
  int32_t dilation_w = 1;
  int32_t depth_multiplier = 1;  // depthwise only
  TfliteActivation activation = TfliteActivation::kNone;
};

struct TfliteTensor {
  std::string name;
  std::vector<int64_t> shape;
  int32_t type = 0;     // TFLite TensorType; 0 is FLOAT32
  torch::Tensor value;  // the constant's values (float32 tensors with a buffer only), else undefined
  bool is_constant() const { return value.defined(); }
};

struct TfliteOperator {
  int32_t code = 0;              // builtin operator code (TfliteOp names the ones this project's importers use)
  std::vector<int32_t> inputs;   // tensor indices; -1 marks an omitted optional input
  std::vector<int32_t> outputs;  // tensor indices
  TfliteConvOptions conv;        // filled for CONV_2D and DEPTHWISE_CONV_2D

  bool is(TfliteOp op) const { return code == static_cast<int32_t>(op); }
};

class TfliteModel {
 public:
  static absl::StatusOr<TfliteModel> Read(const std::string& path);
  // `where` names the bytes in messages.
  static absl::StatusOr<TfliteModel> Parse(std::string_view bytes, const std::string& where);

  const std::vector<TfliteTensor>& tensors() const { return tensors_; }
  const std::vector<TfliteOperator>& operators() const { return operators_; }  // in execution order
  const std::vector<int32_t>& inputs() const { return inputs_; }
  const std::vector<int32_t>& outputs() const { return outputs_; }
  const std::string& where() const { return where_; }

  // The number of float32 constant values: the parameter count of a float model.
  int64_t constant_count() const;

 private:
  std::string where_;
  std::vector<TfliteTensor> tensors_;
  std::vector<TfliteOperator> operators_;
  std::vector<int32_t> inputs_, outputs_;
};

}  // namespace veriface
