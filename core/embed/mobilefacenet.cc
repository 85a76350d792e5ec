#include "core/embed/mobilefacenet.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/nn/tf_ops.h"
#include "core/tfjs/tfjs_weights.h"

namespace veriface {
namespace mobilefacenet {
namespace {

Conv2dSpec ConvSpec(const UnitSpec& s) {
  Conv2dSpec c;
  c.in_channels = s.in;
  c.out_channels = s.out;
  c.kernel_h = c.kernel_w = s.kernel;
  c.stride = s.stride;
  // At stride 1 SAME is symmetric and the convolution pads; at stride 2 forward() pads first.
  c.padding = s.valid || s.stride > 1 ? 0 : s.kernel / 2;
  c.groups = s.depthwise ? s.in : 1;
  c.bias = true;
  return c;
}

}  // namespace

UnitImpl::UnitImpl(const UnitSpec& spec) : spec_(spec), conv_(register_module("conv", FastConv2d(ConvSpec(spec)))) {
  if (spec_.prelu) slope_ = register_parameter("slope", torch::full({spec_.out}, 0.25F));
}

torch::Tensor UnitImpl::forward(const torch::Tensor& x) {
  const torch::Tensor y = conv_(!spec_.valid && spec_.stride > 1 ? PadTfSame(x, spec_.kernel, spec_.stride) : x);
  return spec_.prelu ? PRelu(y, slope_) : y;
}

absl::Status UnitImpl::Load(const torch::Tensor& weights, const torch::Tensor& bias, const torch::Tensor& slope,
                            const std::string& name) {
  // [O, KH, KW, I] -> [O, I, KH, KW]; depthwise [1, KH, KW, C] -> [C, 1, KH, KW].
  const torch::Tensor oihw = spec_.depthwise ? weights.permute({3, 0, 1, 2}) : weights.permute({0, 3, 1, 2});
  VF_RETURN_IF_ERROR(AssignTensor(conv_->weight, oihw.contiguous(), name + " weights"));
  VF_RETURN_IF_ERROR(AssignTensor(conv_->bias, bias, name + " bias"));
  if (spec_.prelu) return AssignTensor(slope_, slope, name + " PReLU slopes");
  return absl::OkStatus();
}

}  // namespace mobilefacenet

namespace {

using mobilefacenet::UnitSpec;

struct Stage {
  int64_t expand;  // channels inside each bottleneck
  int64_t out;
  int blocks;
  int64_t stride;  // of the first block
};

// The bottleneck stages of MobileFaceNet_TF (its Conv2d_2 ... Conv2d_6 scopes).
constexpr Stage kStages[] = {{128, 64, 5, 2}, {256, 128, 1, 2}, {256, 128, 6, 1}, {512, 128, 1, 2}, {256, 128, 2, 1}};

UnitSpec Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool prelu) {
  return UnitSpec{in, out, kernel, stride, false, prelu, false};
}
UnitSpec Depthwise(int64_t channels, int64_t kernel, int64_t stride, bool prelu, bool valid = false) {
  return UnitSpec{channels, channels, kernel, stride, true, prelu, valid};
}

// A convolution of the TFLite graph with the PReLU that follows it, if any.
struct GraphUnit {
  const TfliteOperator* op = nullptr;
  torch::Tensor slope;
};

struct GraphUnits {
  std::vector<GraphUnit> units;
  int residual_adds = 0;
};

// Reads the graph as convolutions, PReLUs (relu(x) + m * (x - |x|)), residual ADDs and a final RESHAPE;
// anything else is an error, so that a graph of another shape is never half-read.
absl::StatusOr<GraphUnits> ReadGraph(const TfliteModel& m) {
  const auto& ops = m.operators();
  const auto& tensors = m.tensors();
  std::map<int32_t, size_t> producer;  // tensor -> operator
  for (size_t i = 0; i < ops.size(); ++i) {
    for (const int32_t t : ops[i].outputs) producer[t] = i;
  }
  auto made_by = [&](int32_t tensor, TfliteOp op) -> const TfliteOperator* {
    const auto it = producer.find(tensor);
    return it != producer.end() && ops[it->second].is(op) ? &ops[it->second] : nullptr;
  };
  auto what = [&](size_t i) { return absl::StrCat(m.where(), ": operator ", i, " (code ", ops[i].code, ")"); };

  GraphUnits g;
  std::map<int32_t, size_t> unit_of;  // a convolution's output tensor -> its unit
  std::vector<bool> used(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    const TfliteOperator& op = ops[i];
    if (!op.is(TfliteOp::kConv2d) && !op.is(TfliteOp::kDepthwiseConv2d)) continue;
    if (op.inputs.size() != 3 || op.outputs.size() != 1 || op.inputs[1] < 0 || op.inputs[2] < 0 ||
        !tensors[op.inputs[1]].is_constant() || !tensors[op.inputs[2]].is_constant()) {
      return absl::InvalidArgumentError(absl::StrCat(what(i), ": expected constant weights and bias"));
    }
    if (op.conv.activation != TfliteActivation::kNone) {
      return absl::InvalidArgumentError(
          absl::StrCat(what(i), " '", tensors[op.outputs[0]].name, "' has a fused activation; MobileFaceNet has none"));
    }
    unit_of[op.outputs[0]] = g.units.size();
    g.units.push_back(GraphUnit{&op, torch::Tensor()});
    used[i] = true;
  }
  // Each PReLU is found from its MUL: m * sub, sub = x - abs(x), and an ADD of that with relu(x).
  for (size_t i = 0; i < ops.size(); ++i) {
    const TfliteOperator& mul = ops[i];
    if (!mul.is(TfliteOp::kMul)) continue;
    const auto bad = absl::InvalidArgumentError(absl::StrCat(what(i), ": a MUL that is not part of a PReLU"));
    if (mul.inputs.size() != 2 || mul.outputs.size() != 1 || mul.inputs[0] < 0 || mul.inputs[1] < 0) return bad;
    const bool first_constant = tensors[mul.inputs[0]].is_constant();
    const int32_t slope_tensor = first_constant ? mul.inputs[0] : mul.inputs[1];
    const TfliteOperator* sub = made_by(first_constant ? mul.inputs[1] : mul.inputs[0], TfliteOp::kSub);
    if (!tensors[slope_tensor].is_constant() || sub == nullptr || sub->inputs.size() != 2) return bad;
    const int32_t x = sub->inputs[0];
    const TfliteOperator* abs = made_by(sub->inputs[1], TfliteOp::kAbs);
    if (abs == nullptr || abs->inputs.empty() || abs->inputs[0] != x || unit_of.count(x) == 0) return bad;
    const TfliteOperator* add = nullptr;
    const TfliteOperator* relu = nullptr;
    for (const TfliteOperator& a : ops) {
      if (!a.is(TfliteOp::kAdd) || a.inputs.size() != 2) continue;
      const int k = a.inputs[0] == mul.outputs[0] ? 1 : a.inputs[1] == mul.outputs[0] ? 0 : -1;
      if (k < 0) continue;
      relu = made_by(a.inputs[static_cast<size_t>(k)], TfliteOp::kRelu);
      if (relu != nullptr && !relu->inputs.empty() && relu->inputs[0] == x) add = &a;
      break;
    }
    if (add == nullptr) return bad;
    g.units[unit_of[x]].slope = 2.0F * tensors[slope_tensor].value.reshape({-1});
    for (const TfliteOperator* p : {&mul, sub, abs, add, relu}) used[static_cast<size_t>(p - ops.data())] = true;
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    if (used[i]) continue;
    if (ops[i].is(TfliteOp::kAdd)) {
      ++g.residual_adds;
    } else if (!ops[i].is(TfliteOp::kReshape) || i + 1 != ops.size()) {
      return absl::InvalidArgumentError(absl::StrCat(what(i), ": not an operator of MobileFaceNet here"));
    }
  }
  return g;
}

}  // namespace

MobileFaceNet::MobileFaceNet() {
  auto add_group = [this](std::initializer_list<UnitSpec> specs, bool residual) {
    Group g{units_.size(), units_.size() + specs.size(), residual};
    for (const UnitSpec& s : specs) {
      units_.push_back(register_module(absl::StrCat("unit", units_.size()), mobilefacenet::Unit(s)));
    }
    groups_.push_back(g);
  };
  add_group({Conv(3, 64, 3, 2, true), Depthwise(64, 3, 1, true), Conv(64, 64, 1, 1, false)}, false);
  int64_t in = 64;
  for (const Stage& s : kStages) {
    for (int b = 0; b < s.blocks; ++b) {
      const int64_t stride = b == 0 ? s.stride : 1;
      add_group(
          {Conv(in, s.expand, 1, 1, true), Depthwise(s.expand, 3, stride, true), Conv(s.expand, s.out, 1, 1, false)},
          stride == 1 && in == s.out);
      in = s.out;
    }
  }
  // 1x1 to 512, the 7x7 global depthwise convolution (GDConv), then two linear 1x1 layers to 192.
  add_group({Conv(in, 512, 1, 1, true), Depthwise(512, 7, 1, false, true), Conv(512, 512, 1, 1, false),
             Conv(512, 192, 1, 1, false)},
            false);
}

torch::Tensor MobileFaceNet::forward(const torch::Tensor& chips) {
  torch::Tensor x = (chips - 127.5) / 128.0;
  for (const Group& g : groups_) {
    torch::Tensor y = x;
    for (size_t i = g.begin; i < g.end; ++i) y = units_[i]->forward(y);
    x = g.residual ? y + x : y;
  }
  return x.flatten(1);
}

absl::Status MobileFaceNet::LoadFromTflite(const TfliteModel& model) {
  VF_ASSIGN_OR_RETURN(const GraphUnits graph, ReadGraph(model));
  if (graph.units.size() != units_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.where(), ": ", graph.units.size(), " convolutions, MobileFaceNet has ", units_.size()));
  }
  int residual = 0;
  for (const Group& g : groups_) residual += g.residual ? 1 : 0;
  if (graph.residual_adds != residual) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.where(), ": ", graph.residual_adds, " residual additions, MobileFaceNet has ", residual));
  }
  for (size_t i = 0; i < units_.size(); ++i) {
    const UnitSpec& s = units_[i]->spec();
    const TfliteOperator& op = *graph.units[i].op;
    const TfliteTensor& w = model.tensors()[static_cast<size_t>(op.inputs[1])];
    const TfliteTensor& b = model.tensors()[static_cast<size_t>(op.inputs[2])];
    const std::string name = absl::StrCat(model.where(), ": layer ", i, " '", model.tensors()[op.outputs[0]].name, "'");
    const std::vector<int64_t> shape = s.depthwise ? std::vector<int64_t>{1, s.kernel, s.kernel, s.out}
                                                   : std::vector<int64_t>{s.out, s.kernel, s.kernel, s.in};
    const bool same_kind = op.is(TfliteOp::kDepthwiseConv2d) == s.depthwise;
    const bool same_stride = op.conv.stride_h == s.stride && op.conv.stride_w == s.stride;
    // Padding matters only for kernels wider than one pixel.
    const bool same_padding = s.kernel == 1 || (op.conv.padding == TflitePadding::kValid) == s.valid;
    const bool plain = op.conv.dilation_h == 1 && op.conv.dilation_w == 1 && op.conv.depth_multiplier == 1;
    if (!same_kind || !same_stride || !same_padding || !plain || w.shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": expected a ", s.depthwise ? "depthwise" : "", " ",
                                                     s.kernel, "x", s.kernel, " convolution at stride ", s.stride,
                                                     " with weights [", absl::StrJoin(shape, ","), "]"));
    }
    if (graph.units[i].slope.defined() != s.prelu) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, s.prelu ? ": no PReLU follows it" : ": an unexpected PReLU"));
    }
    VF_RETURN_IF_ERROR(units_[i]->Load(w.value, b.value, graph.units[i].slope, name));
  }
  return absl::OkStatus();
}

}  // namespace veriface
