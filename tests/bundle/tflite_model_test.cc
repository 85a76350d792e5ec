// The TFLite reader: the real MobileFaceNet file read whole and written back by the test writer (the two
// must agree on every tensor and operator), and small written models cut short or corrupted byte by byte
// (each an error that says what is wrong, never a crash).

#include "core/tflite/tflite_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/bundle/pinned_mobilefacenet.h"
#include "tests/testing/tflite_writer.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

// input [1,4,4,1] -> 3x3 conv (stride 2, SAME, fused ReLU) with constant weights and bias -> output.
testing::TfliteGraph TinyGraph() {
  testing::TfliteGraph g;
  g.tensors.push_back({"input", {1, 4, 4, 1}, 0, torch::Tensor()});
  g.tensors.push_back({"weights", {2, 3, 3, 1}, 0, torch::arange(18, torch::kFloat32).reshape({2, 3, 3, 1})});
  g.tensors.push_back({"bias", {2}, 0, torch::tensor({0.5F, -0.5F})});
  g.tensors.push_back({"output", {1, 2, 2, 2}, 0, torch::Tensor()});
  TfliteOperator conv;
  conv.code = static_cast<int32_t>(TfliteOp::kConv2d);
  conv.inputs = {0, 1, 2};
  conv.outputs = {3};
  conv.conv.stride_h = conv.conv.stride_w = 2;
  conv.conv.activation = TfliteActivation::kRelu;
  g.operators.push_back(conv);
  g.inputs = {0};
  g.outputs = {3};
  return g;
}

void ExpectSameGraph(const TfliteModel& a, const TfliteModel& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const TfliteTensor& x = a.tensors()[i];
    const TfliteTensor& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.shape, y.shape) << x.name;
    EXPECT_EQ(x.type, y.type) << x.name;
    ASSERT_EQ(x.is_constant(), y.is_constant()) << x.name;
    if (x.is_constant()) {
      EXPECT_TRUE(torch::equal(x.value, y.value)) << x.name;
    }
  }
  ASSERT_EQ(a.operators().size(), b.operators().size());
  for (size_t i = 0; i < a.operators().size(); ++i) {
    const TfliteOperator& x = a.operators()[i];
    const TfliteOperator& y = b.operators()[i];
    EXPECT_EQ(x.code, y.code) << "operator " << i;
    EXPECT_EQ(x.inputs, y.inputs) << "operator " << i;
    EXPECT_EQ(x.outputs, y.outputs) << "operator " << i;
    EXPECT_EQ(x.conv.padding, y.conv.padding) << "operator " << i;
    EXPECT_EQ(x.conv.stride_h, y.conv.stride_h) << "operator " << i;
    EXPECT_EQ(x.conv.stride_w, y.conv.stride_w) << "operator " << i;
    EXPECT_EQ(x.conv.activation, y.conv.activation) << "operator " << i;
    EXPECT_EQ(x.conv.depth_multiplier, y.conv.depth_multiplier) << "operator " << i;
  }
  EXPECT_EQ(a.inputs(), b.inputs());
  EXPECT_EQ(a.outputs(), b.outputs());
}

TEST(TfliteModelTest, ReadsMobileFaceNetAndTheWriterGivesTheSameGraphBack) {
  const std::string bytes = testing::PinnedMobileFaceNetBytes();
  const auto model = TfliteModel::Parse(bytes, "MobileFaceNet.tflite");
  ASSERT_TRUE(model.ok()) << model.status();
  // Facts of the file (checked by hand against a dump, and by the Node oracle that made the goldens).
  ASSERT_EQ(model->inputs().size(), 1U);
  EXPECT_EQ(model->tensors()[model->inputs()[0]].name, "input");
  EXPECT_EQ(model->tensors()[model->inputs()[0]].shape, (std::vector<int64_t>{2, 112, 112, 3}));
  EXPECT_EQ(model->tensors()[model->outputs()[0]].shape, (std::vector<int64_t>{2, 192}));
  int convs = 0, depthwise = 0;
  for (const TfliteOperator& op : model->operators()) {
    convs += op.is(TfliteOp::kConv2d) ? 1 : 0;
    depthwise += op.is(TfliteOp::kDepthwiseConv2d) ? 1 : 0;
  }
  EXPECT_EQ(convs, 35);
  EXPECT_EQ(depthwise, 17);
  EXPECT_EQ(model->operators().front().conv.stride_h, 2);
  EXPECT_EQ(model->operators().front().conv.padding, TflitePadding::kSame);
  EXPECT_GT(model->constant_count(), 1'200'000);

  const std::string rewritten = testing::WriteTflite(testing::GraphOf(*model));
  const auto again = TfliteModel::Parse(rewritten, "rewritten");
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectSameGraph(*model, *again);
}

TEST(TfliteModelTest, EveryTruncationIsAnError) {
  const std::string bytes = testing::WriteTflite(TinyGraph());
  ASSERT_TRUE(TfliteModel::Parse(bytes, "tiny").ok());
  // The file ends with the last constant's bytes (and a NUL after them that nothing reads).
  for (size_t n = 0; n + 1 < bytes.size(); ++n) {
    const auto cut = TfliteModel::Parse(std::string_view(bytes).substr(0, n), "cut");
    EXPECT_FALSE(cut.ok()) << "a prefix of " << n << " of " << bytes.size() << " bytes parsed";
  }
}

TEST(TfliteModelTest, CorruptBytesGiveErrorsOrAGraphWithValidIndicesNeverACrash) {
  const std::string bytes = testing::WriteTflite(TinyGraph());
  int refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const unsigned char flip : {0x01, 0x80, 0xFF}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      const auto m = TfliteModel::Parse(bad, "corrupt");
      if (!m.ok()) {
        ++refused;
        continue;
      }
      // What parses must be safe to walk: every index names a tensor, every constant matches its shape.
      for (const TfliteOperator& op : m->operators()) {
        for (const int32_t t : op.inputs) EXPECT_TRUE(t == -1 || static_cast<size_t>(t) < m->tensors().size());
        for (const int32_t t : op.outputs) EXPECT_LT(static_cast<size_t>(t), m->tensors().size());
      }
      for (const TfliteTensor& t : m->tensors()) {
        if (t.is_constant()) {
          EXPECT_EQ(t.value.sizes().vec(), t.shape) << t.name;
        }
      }
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(TfliteModelTest, ErrorsSayWhatIsWrong) {
  EXPECT_THAT(std::string(TfliteModel::Parse("not a model at all", "x.tflite").status().message()),
              HasSubstr("x.tflite: not a TensorFlow Lite file"));

  testing::TfliteGraph short_constant = TinyGraph();
  short_constant.tensors[2].shape = {3};  // 3 floats declared, 2 stored
  EXPECT_THAT(std::string(TfliteModel::Parse(testing::WriteTflite(short_constant), "m").status().message()),
              HasSubstr("tensor 2 'bias' holds 8 bytes, its shape needs 12"));

  testing::TfliteGraph dangling = TinyGraph();
  dangling.operators[0].inputs[0] = 7;
  EXPECT_THAT(std::string(TfliteModel::Parse(testing::WriteTflite(dangling), "m").status().message()),
              HasSubstr("operator 0 names tensor 7 of 4"));

  testing::TfliteGraph zero_stride = TinyGraph();
  zero_stride.operators[0].conv.stride_w = 0;
  EXPECT_THAT(std::string(TfliteModel::Parse(testing::WriteTflite(zero_stride), "m").status().message()),
              HasSubstr("strides, dilations and depth multiplier must be >= 1"));
}

}  // namespace
}  // namespace veriface
