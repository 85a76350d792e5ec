#include "tests/testing/tflite_writer.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "core/tflite/tflite_schema.h"

namespace veriface::testing {
namespace {

namespace field = tflite_schema::field;

// Lays a FlatBuffer out front to back: every table is written before what it points to, so each offset
// (unsigned, relative to its own field) points forward and is patched in once its target is written.
class Writer {
 public:
  // A table's field: its number and its inline bytes (a scalar, or 4 zero bytes for an offset).
  struct Field {
    int index;
    std::string bytes;
  };

  template <typename T>
  static Field Scalar(int index, T v) {
    return {index, std::string(reinterpret_cast<const char*>(&v), sizeof v)};
  }
  static Field Offset(int index) { return {index, std::string(4, '\0')}; }

  // Writes a vtable and then its table, and points the offset field at `from` (if any) to the table;
  // returns where each field landed.
  std::map<int, size_t> Table(const std::vector<Field>& fields, std::optional<size_t> from = std::nullopt) {
    int max_index = -1;
    for (const Field& f : fields) max_index = std::max(max_index, f.index);
    Align(4);
    const size_t vtable = out_.size();
    const auto slots = static_cast<uint16_t>(4 + 2 * (max_index + 1));
    out_.append(slots, '\0');
    Align(8);
    const size_t table = out_.size();
    if (from) PutAt<uint32_t>(*from, static_cast<uint32_t>(table - *from));
    Put<int32_t>(static_cast<int32_t>(table - vtable));
    std::map<int, size_t> where;
    for (const Field& f : fields) {
      Align(f.bytes.size());
      where[f.index] = out_.size();
      PutAt<uint16_t>(vtable + 4 + 2 * static_cast<size_t>(f.index), static_cast<uint16_t>(out_.size() - table));
      out_ += f.bytes;
    }
    PutAt<uint16_t>(vtable, slots);
    PutAt<uint16_t>(vtable + 2, static_cast<uint16_t>(out_.size() - table));
    return where;
  }

  // Points the offset field at `field` to the vector or string written next.
  void PointHere(size_t field) {
    Align(4);
    PutAt<uint32_t>(field, static_cast<uint32_t>(out_.size() - field));
  }

  // A vector of `n` offsets to be patched; returns the position of the first.
  size_t OffsetVector(size_t n) {
    Align(4);
    Put<uint32_t>(static_cast<uint32_t>(n));
    const size_t first = out_.size();
    out_.append(4 * n, '\0');
    return first;
  }

  void Ints(const std::vector<int32_t>& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const int32_t x : v) Put<int32_t>(x);
  }
  void Bytes(const std::string& b) {
    Put<uint32_t>(static_cast<uint32_t>(b.size()));
    out_ += b;
    out_.push_back('\0');  // strings end in a NUL; harmless after a byte vector
  }

  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <typename T>
  void PutAt(size_t at, T v) {
    std::memcpy(out_.data() + at, &v, sizeof v);
  }
  void Align(size_t a) {
    while (out_.size() % a != 0) out_.push_back('\0');
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

void WriteOperator(Writer& w, const TfliteOperator& op, uint32_t code_index, size_t from) {
  const bool depthwise = op.is(TfliteOp::kDepthwiseConv2d);
  const bool conv = depthwise || op.is(TfliteOp::kConv2d);
  std::vector<Writer::Field> fields = {Writer::Scalar<uint32_t>(field::kOpCodeIndex, code_index),
                                       Writer::Offset(field::kOpInputs), Writer::Offset(field::kOpOutputs)};
  if (conv) {
    fields.push_back(Writer::Scalar<uint8_t>(field::kOpOptionsType, depthwise
                                                                        ? tflite_schema::kDepthwiseConv2dOptionsType
                                                                        : tflite_schema::kConv2dOptionsType));
    fields.push_back(Writer::Offset(field::kOpOptions));
  }
  auto at = w.Table(fields, from);
  w.PointHere(at[field::kOpInputs]);
  w.Ints(op.inputs);
  w.PointHere(at[field::kOpOutputs]);
  w.Ints(op.outputs);
  if (!conv) return;
  const TfliteConvOptions& c = op.conv;
  const tflite_schema::ConvOptionFields f = tflite_schema::ConvFields(depthwise);
  std::vector<Writer::Field> options = {
      Writer::Scalar<int8_t>(f.padding, c.padding == TflitePadding::kSame ? 0 : 1),
      Writer::Scalar<int32_t>(f.stride_w, c.stride_w),
      Writer::Scalar<int32_t>(f.stride_h, c.stride_h),
      Writer::Scalar<int8_t>(f.activation, tflite_schema::ActivationCode(c.activation)),
      Writer::Scalar<int32_t>(f.dilation_w, c.dilation_w),
      Writer::Scalar<int32_t>(f.dilation_h, c.dilation_h)};
  if (depthwise) options.push_back(Writer::Scalar<int32_t>(f.depth_multiplier, c.depth_multiplier));
  w.Table(options, at[field::kOpOptions]);
}

}  // namespace

TfliteGraph GraphOf(const TfliteModel& model) {
  return TfliteGraph{model.tensors(), model.operators(), model.inputs(), model.outputs()};
}

std::string WriteTflite(const TfliteGraph& g) {
  std::vector<int32_t> codes;
  for (const TfliteOperator& op : g.operators) {
    if (std::find(codes.begin(), codes.end(), op.code) == codes.end()) codes.push_back(op.code);
  }
  Writer w;
  w.Put<uint32_t>(0);  // the root offset, patched below
  w.bytes() += "TFL3";
  auto model = w.Table({Writer::Scalar<uint32_t>(field::kModelVersion, tflite_schema::kSchemaVersion),
                        Writer::Offset(field::kModelOperatorCodes), Writer::Offset(field::kModelSubgraphs),
                        Writer::Offset(field::kModelBuffers)},
                       0);

  w.PointHere(model[field::kModelOperatorCodes]);
  const size_t code_slots = w.OffsetVector(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) {
    w.Table({Writer::Scalar<int8_t>(field::kCodeDeprecatedBuiltin, static_cast<int8_t>(std::min(codes[i], 127))),
             Writer::Scalar<int32_t>(field::kCodeVersion, 1), Writer::Scalar<int32_t>(field::kCodeBuiltin, codes[i])},
            code_slots + 4 * i);
  }

  w.PointHere(model[field::kModelSubgraphs]);
  const size_t graph_slot = w.OffsetVector(1);
  auto graph = w.Table({Writer::Offset(field::kSubgraphTensors), Writer::Offset(field::kSubgraphInputs),
                        Writer::Offset(field::kSubgraphOutputs), Writer::Offset(field::kSubgraphOperators)},
                       graph_slot);
  w.PointHere(graph[field::kSubgraphTensors]);
  const size_t tensor_slots = w.OffsetVector(g.tensors.size());
  uint32_t next_buffer = 1;  // buffer 0 is the empty one that non-constant tensors name
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const TfliteTensor& t = g.tensors[i];
    auto at = w.Table(
        {Writer::Offset(field::kTensorShape), Writer::Scalar<int8_t>(field::kTensorType, static_cast<int8_t>(t.type)),
         Writer::Scalar<uint32_t>(field::kTensorBuffer, t.is_constant() ? next_buffer++ : 0),
         Writer::Offset(field::kTensorName)},
        tensor_slots + 4 * i);
    w.PointHere(at[field::kTensorShape]);
    std::vector<int32_t> shape(t.shape.begin(), t.shape.end());
    w.Ints(shape);
    w.PointHere(at[field::kTensorName]);
    w.Bytes(t.name);
  }
  w.PointHere(graph[field::kSubgraphInputs]);
  w.Ints(g.inputs);
  w.PointHere(graph[field::kSubgraphOutputs]);
  w.Ints(g.outputs);
  w.PointHere(graph[field::kSubgraphOperators]);
  const size_t op_slots = w.OffsetVector(g.operators.size());
  for (size_t i = 0; i < g.operators.size(); ++i) {
    const auto code = std::find(codes.begin(), codes.end(), g.operators[i].code) - codes.begin();
    WriteOperator(w, g.operators[i], static_cast<uint32_t>(code), op_slots + 4 * i);
  }

  w.PointHere(model[field::kModelBuffers]);
  const size_t buffer_slots = w.OffsetVector(next_buffer);
  w.Table({}, buffer_slots);
  uint32_t b = 1;
  for (const TfliteTensor& t : g.tensors) {
    if (!t.is_constant()) continue;
    auto at = w.Table({Writer::Offset(field::kBufferData)}, buffer_slots + 4 * b++);
    w.PointHere(at[field::kBufferData]);
    const torch::Tensor v = t.value.contiguous();
    w.Bytes(std::string(reinterpret_cast<const char*>(v.data_ptr<float>()), static_cast<size_t>(v.numel()) * 4));
  }
  return w.bytes();
}

}  // namespace veriface::testing
