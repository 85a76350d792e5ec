#include "core/tflite/tflite_model.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/tflite/tflite_schema.h"

namespace veriface {
namespace {

namespace field = tflite_schema::field;
using tflite_schema::kConv2dOptionsType;
using tflite_schema::kDepthwiseConv2dOptionsType;
using tflite_schema::kFloat32;

// Bounds-checked access to FlatBuffer tables. Positions are byte offsets into the file; 0 means "absent"
// (offset 0 holds the root offset, so no table or vector can start there). The first fault is kept and
// every later read returns zero, so the parser can read straight through and check ok() at the end.
class FlatReader {
 public:
  explicit FlatReader(std::string_view bytes) : b_(bytes) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  template <typename T>
  T Load(uint64_t at) {
    if (at > b_.size() || b_.size() - at < sizeof(T)) return Fail<T>(absl::StrCat("read past the end at byte ", at));
    T v;
    std::memcpy(&v, b_.data() + at, sizeof(T));
    return v;
  }

  // The table that the offset stored at `at` points to.
  uint64_t Deref(uint64_t at) {
    const uint64_t target = at + Load<uint32_t>(at);
    if (!ok()) return 0;
    if (target == 0 || target >= b_.size())
      return Fail<uint64_t>(absl::StrCat("offset at byte ", at, " points outside"));
    return target;
  }

  // Where field `index` of the table at `table` lies, or 0 when it is absent.
  uint64_t Field(uint64_t table, int index, size_t width) {
    if (table == 0) return 0;
    const int64_t vtable = static_cast<int64_t>(table) - Load<int32_t>(table);
    if (!ok()) return 0;
    if (vtable < 0 || static_cast<uint64_t>(vtable) >= b_.size()) return Fail<uint64_t>("a vtable lies outside");
    const uint16_t vtable_size = Load<uint16_t>(static_cast<uint64_t>(vtable));
    const uint64_t slot = 4 + 2 * static_cast<uint64_t>(index);
    if (!ok() || slot + 2 > vtable_size) return 0;
    const uint16_t offset = Load<uint16_t>(static_cast<uint64_t>(vtable) + slot);
    if (!ok() || offset == 0) return 0;
    const uint64_t at = table + offset;
    if (at + width > b_.size()) return Fail<uint64_t>(absl::StrCat("field ", index, " runs past the end"));
    return at;
  }

  template <typename T>
  T Scalar(uint64_t table, int index, T fallback) {
    const uint64_t at = Field(table, index, sizeof(T));
    return at == 0 ? fallback : Load<T>(at);
  }

  uint64_t Table(uint64_t table, int index) {
    const uint64_t at = Field(table, index, 4);
    return at == 0 ? 0 : Deref(at);
  }

  struct Vector {
    uint64_t data = 0;
    uint32_t size = 0;
  };
  Vector Vec(uint64_t table, int index, size_t element_size) {
    const uint64_t start = Table(table, index);
    if (start == 0) return {};
    const uint32_t n = Load<uint32_t>(start);
    if (!ok()) return {};
    if (start + 4 + static_cast<uint64_t>(n) * element_size > b_.size()) {
      return Fail<Vector>(absl::StrCat("a vector of ", n, " entries runs past the end"));
    }
    return {start + 4, n};
  }

  std::vector<int32_t> Ints(uint64_t table, int index) {
    const Vector v = Vec(table, index, 4);
    std::vector<int32_t> out(v.size);
    for (uint32_t i = 0; i < v.size; ++i) out[i] = Load<int32_t>(v.data + 4 * uint64_t{i});
    return out;
  }

  std::vector<uint64_t> Tables(uint64_t table, int index) {
    const Vector v = Vec(table, index, 4);
    std::vector<uint64_t> out;
    out.reserve(v.size);
    for (uint32_t i = 0; i < v.size && ok(); ++i) out.push_back(Deref(v.data + 4 * uint64_t{i}));
    return out;
  }

  std::string String(uint64_t table, int index) {
    const Vector v = Vec(table, index, 1);
    return ok() ? std::string(b_.substr(v.data, v.size)) : std::string();
  }

  std::string_view Bytes(uint64_t at, uint64_t size) {
    if (at > b_.size() || b_.size() - at < size) return Fail<std::string_view>("a buffer runs past the end");
    return b_.substr(at, size);
  }

  template <typename T>
  T Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return T{};
  }

 private:
  std::string_view b_;
  std::string error_;
};

absl::StatusOr<TfliteConvOptions> ReadConvOptions(FlatReader& r, uint64_t op, bool depthwise, const std::string& what) {
  const uint8_t type = r.Scalar<uint8_t>(op, field::kOpOptionsType, 0);
  if (type != (depthwise ? kDepthwiseConv2dOptionsType : kConv2dOptionsType)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": its options are missing or of the wrong kind"));
  }
  const uint64_t o = r.Table(op, field::kOpOptions);
  const tflite_schema::ConvOptionFields f = tflite_schema::ConvFields(depthwise);
  TfliteConvOptions c;
  const int8_t padding = r.Scalar<int8_t>(o, f.padding, 0);
  c.stride_w = r.Scalar<int32_t>(o, f.stride_w, 0);
  c.stride_h = r.Scalar<int32_t>(o, f.stride_h, 0);
  if (depthwise) c.depth_multiplier = r.Scalar<int32_t>(o, f.depth_multiplier, 1);
  c.activation = tflite_schema::ActivationFromCode(r.Scalar<int8_t>(o, f.activation, 0));
  c.dilation_w = r.Scalar<int32_t>(o, f.dilation_w, 1);
  c.dilation_h = r.Scalar<int32_t>(o, f.dilation_h, 1);
  if (padding != 0 && padding != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unknown padding ", static_cast<int>(padding)));
  }
  c.padding = padding == 0 ? TflitePadding::kSame : TflitePadding::kValid;
  if (c.stride_w < 1 || c.stride_h < 1 || c.dilation_w < 1 || c.dilation_h < 1 || c.depth_multiplier < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": strides, dilations and depth multiplier must be >= 1"));
  }
  return c;
}

absl::Status CheckIndices(const std::vector<int32_t>& indices, size_t tensor_count, bool allow_omitted,
                          const std::string& what) {
  for (const int32_t i : indices) {
    if ((i == -1 && allow_omitted) || (i >= 0 && static_cast<size_t>(i) < tensor_count)) continue;
    return absl::InvalidArgumentError(absl::StrCat(what, " names tensor ", i, " of ", tensor_count));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TfliteModel> TfliteModel::Read(const std::string& path) {
  VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  return Parse(bytes, path);
}

absl::StatusOr<TfliteModel> TfliteModel::Parse(std::string_view bytes, const std::string& where) {
  auto error = [&](const std::string& why) { return absl::InvalidArgumentError(absl::StrCat(where, ": ", why)); };
  if (bytes.size() < 8 || bytes.substr(4, 4) != "TFL3") return error("not a TensorFlow Lite file (no TFL3 identifier)");
  FlatReader r(bytes);
  TfliteModel m;
  m.where_ = where;
  const uint64_t root = r.Deref(0);
  const uint32_t version = r.Scalar<uint32_t>(root, field::kModelVersion, 0);
  if (r.ok() && version != tflite_schema::kSchemaVersion) {
    return error(absl::StrCat("schema version ", version, ", expected ", tflite_schema::kSchemaVersion));
  }

  std::vector<int32_t> codes;
  for (const uint64_t c : r.Tables(root, field::kModelOperatorCodes)) {
    // Codes above 127 live only in the newer field; the old one then holds 127, so the larger one is right.
    const int32_t old_code = r.Scalar<int8_t>(c, field::kCodeDeprecatedBuiltin, 0);
    codes.push_back(std::max(old_code, r.Scalar<int32_t>(c, field::kCodeBuiltin, 0)));
  }
  const std::vector<uint64_t> buffers = r.Tables(root, field::kModelBuffers);
  const std::vector<uint64_t> subgraphs = r.Tables(root, field::kModelSubgraphs);
  if (!r.ok()) return error(r.error());
  if (subgraphs.empty()) return error("no subgraph");
  const uint64_t graph = subgraphs[0];

  for (const uint64_t t : r.Tables(graph, field::kSubgraphTensors)) {
    TfliteTensor tensor;
    tensor.name = r.String(t, field::kTensorName);
    tensor.type = r.Scalar<int8_t>(t, field::kTensorType, 0);
    const std::string what = absl::StrCat("tensor ", m.tensors_.size(), " '", tensor.name, "'");
    uint64_t count = 1;
    for (const int32_t d : r.Ints(t, field::kTensorShape)) {
      if (d < 0) return error(absl::StrCat(what, " has a negative dimension"));
      tensor.shape.push_back(d);
      count = std::min<uint64_t>(count * static_cast<uint64_t>(d), uint64_t{1} << 40);  // saturates; sizes below
    }
    const uint32_t buffer = r.Scalar<uint32_t>(t, field::kTensorBuffer, 0);
    if (!r.ok()) return error(r.error());
    if (buffer >= buffers.size()) return error(absl::StrCat(what, " names buffer ", buffer, " of ", buffers.size()));
    // Constants are inline (data) or, in files over 2 GB, placed after the FlatBuffer (offset > 1, size).
    std::string_view data;
    const uint64_t offset = r.Scalar<uint64_t>(buffers[buffer], field::kBufferOffset, 0);
    if (offset > 1) {
      data = r.Bytes(offset, r.Scalar<uint64_t>(buffers[buffer], field::kBufferSize, 0));
    } else {
      const FlatReader::Vector v = r.Vec(buffers[buffer], field::kBufferData, 1);
      data = r.Bytes(v.data, v.size);
    }
    if (!r.ok()) return error(r.error());
    if (!data.empty() && tensor.type == kFloat32) {
      if (data.size() != count * sizeof(float)) {
        return error(absl::StrCat(what, " holds ", data.size(), " bytes, its shape needs ", count * sizeof(float)));
      }
      tensor.value = torch::empty(tensor.shape, torch::kFloat32);
      std::memcpy(tensor.value.data_ptr<float>(), data.data(), data.size());
    }
    m.tensors_.push_back(std::move(tensor));
  }
  m.inputs_ = r.Ints(graph, field::kSubgraphInputs);
  m.outputs_ = r.Ints(graph, field::kSubgraphOutputs);
  if (!r.ok()) return error(r.error());
  VF_RETURN_IF_ERROR(CheckIndices(m.inputs_, m.tensors_.size(), false, absl::StrCat(where, ": the graph input")));
  VF_RETURN_IF_ERROR(CheckIndices(m.outputs_, m.tensors_.size(), false, absl::StrCat(where, ": the graph output")));

  for (const uint64_t o : r.Tables(graph, field::kSubgraphOperators)) {
    TfliteOperator op;
    const std::string what = absl::StrCat(where, ": operator ", m.operators_.size());
    const uint32_t code_index = r.Scalar<uint32_t>(o, field::kOpCodeIndex, 0);
    op.inputs = r.Ints(o, field::kOpInputs);
    op.outputs = r.Ints(o, field::kOpOutputs);
    if (!r.ok()) return error(r.error());
    if (code_index >= codes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " names operator code ", code_index, " of ", codes.size()));
    }
    op.code = codes[code_index];
    VF_RETURN_IF_ERROR(CheckIndices(op.inputs, m.tensors_.size(), true, what));
    VF_RETURN_IF_ERROR(CheckIndices(op.outputs, m.tensors_.size(), false, what));
    if (op.is(TfliteOp::kConv2d) || op.is(TfliteOp::kDepthwiseConv2d)) {
      VF_ASSIGN_OR_RETURN(op.conv, ReadConvOptions(r, o, op.is(TfliteOp::kDepthwiseConv2d), what));
      if (!r.ok()) return error(r.error());
    }
    m.operators_.push_back(std::move(op));
  }
  if (!r.ok()) return error(r.error());
  return m;
}

int64_t TfliteModel::constant_count() const {
  int64_t n = 0;
  for (const TfliteTensor& t : tensors_) n += t.is_constant() ? t.value.numel() : 0;
  return n;
}

}  // namespace veriface
