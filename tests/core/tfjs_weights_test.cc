// The tfjs weights reader: the real face-api.js manifests, and hand-made ones that are corrupt,
// truncated or mismatched (each must give an error that names the tensor or file, never a crash).

#include "core/tfjs/tfjs_weights.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/detect/mtcnn_nets.h"
#include "core/embed/face_resnet.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string Floats(std::initializer_list<float> values) {
  std::string bytes;
  for (const float v : values) bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  return bytes;
}

// A manifest with one float32 [2, 3] tensor "a" and one uint8-quantised [4] tensor "b".
constexpr char kManifest[] = R"([{"paths": ["shard1"], "weights": [
  {"name": "a", "shape": [2, 3], "dtype": "float32"},
  {"name": "b", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}
]}])";

class SyntheticManifestTest : public ::testing::Test {
 protected:
  void Write(const std::string& manifest, const std::string& shard) {
    WriteFile(dir_.File("m.json"), manifest);
    WriteFile(dir_.File("shard1"), shard);
  }
  absl::StatusOr<TfjsWeights> Read() { return TfjsWeights::Read(dir_.File("m.json")); }
  testing::TempDir dir_;
  const std::string good_shard_ = Floats({1, 2, 3, 4, 5, 6}) + std::string("\x00\x01\x02\xff", 4);
};

TEST_F(SyntheticManifestTest, ReadsFloatAndDequantisesUint8) {
  Write(kManifest, good_shard_);
  const auto w = Read();
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(w->parameter_count(), 10);
  const auto a = w->Get("a", {2, 3});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[1][2].item<float>(), 6.0F);
  const auto b = w->Get("b", {4});
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(torch::equal(*b, torch::tensor({-1.0F, -0.5F, 0.0F, 126.5F})));  // q * 0.5 - 1
}

TEST_F(SyntheticManifestTest, TruncatedShardNamesTheTensor) {
  Write(kManifest, good_shard_.substr(0, good_shard_.size() - 1));
  const auto w = Read();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("tensor 'b'"));
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("truncated"));
}

TEST_F(SyntheticManifestTest, ExtraBytesAreAMismatch) {
  Write(kManifest, good_shard_ + "xx");
  const auto w = Read();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("mismatched"));
}

TEST_F(SyntheticManifestTest, MissingShardNamesTheFile) {
  WriteFile(dir_.File("m.json"), kManifest);
  const auto w = Read();
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("shard1"));
}

TEST_F(SyntheticManifestTest, CorruptManifestsAreRejected) {
  for (const std::string& bad : {std::string("{not json"), std::string(R"({"paths": []})"),
                                 std::string(R"([{"paths": ["shard1"], "weights": [{"shape": [1]}]}])"),
                                 std::string(R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [-1]}]}])"),
                                 std::string(R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [1],
                                     "dtype": "complex64"}]}])")}) {
    SCOPED_TRACE(bad);
    Write(bad, good_shard_);
    const auto w = Read();
    EXPECT_FALSE(w.ok());
  }
}

// Manifests with the wrong JSON type in a field, or a shape whose element count overflows, are the
// manifest's fault: each is INVALID_ARGUMENT or DATA_LOSS, never an exception or a wrapped size.
TEST_F(SyntheticManifestTest, MistypedFieldsAndHugeShapesAreRefused) {
  struct Case {
    std::string manifest;
    absl::StatusCode code;
    std::string says;
  };
  const Case cases[] = {
      {R"([{"paths": [7], "weights": []}])", absl::StatusCode::kInvalidArgument, "not a string"},
      {R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [2, 3], "dtype": 4}]}])",
       absl::StatusCode::kInvalidArgument, "m.json"},
      {R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [1], "dtype": "float32",
           "quantization": {"dtype": 8, "scale": 1, "min": 0}}]}])",
       absl::StatusCode::kInvalidArgument, "m.json"},
      {R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [4294967296, 4294967296, 4294967296]}]}])",
       absl::StatusCode::kDataLoss, "needs more than"},
      {R"([{"paths": ["shard1"], "weights": [{"name": "a", "shape": [9223372036854775807, 2]}]}])",
       absl::StatusCode::kDataLoss, "needs more than"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.manifest);
    Write(c.manifest, good_shard_);
    const auto w = Read();
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), c.code) << w.status();
    EXPECT_THAT(std::string(w.status().message()), HasSubstr(c.says));
  }
}

// A manifest names its shards relative to its own folder; one that names a file elsewhere is refused
// before anything is read.
TEST_F(SyntheticManifestTest, ShardPathsMustStayInTheManifestsFolder) {
  for (const std::string path : {"../shard1", "/etc/passwd", "sub/../../shard1", ""}) {
    SCOPED_TRACE(path);
    Write(R"([{"paths": [")" + path + R"("], "weights": []}])", good_shard_);
    const auto w = Read();
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("relative to the manifest"));
  }
}

// Found by fuzz/tfjs_manifest_fuzzer: an empty tensor in an empty shard copied from a null pointer.
TEST(TfjsParseTest, EmptyTensorsInAnEmptyShardAreEmpty) {
  const auto w = TfjsWeights::Parse(R"([{"paths": ["x"], "weights": [{"name": "v", "shape": [0, 3]}]}])", "memory",
                                    [](const std::string&) -> absl::StatusOr<std::string> { return std::string(); });
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->Get("v", {0, 3})->numel(), 0);
}

TEST(TfjsParseTest, ReadsShardsThroughTheGivenReader) {
  std::vector<std::string> asked;
  const auto w = TfjsWeights::Parse(R"([{"paths": ["x", "y"], "weights": [{"name": "v", "shape": [2]}]}])", "memory",
                                    [&](const std::string& name) -> absl::StatusOr<std::string> {
                                      asked.push_back(name);
                                      return Floats({name == "x" ? 1.0F : 2.0F});
                                    });
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(asked, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(torch::equal(*w->Get("v", {2}), torch::tensor({1.0F, 2.0F})));
}

TEST_F(SyntheticManifestTest, WrongShapeOrNameOnGet) {
  Write(kManifest, good_shard_);
  const auto w = Read();
  ASSERT_TRUE(w.ok());
  const auto wrong = w->Get("a", {3, 2});
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("'a' has shape [2,3], expected [3,2]"));
  EXPECT_EQ(w->Get("zzz", {1}).status().code(), absl::StatusCode::kNotFound);
}

TEST(HwioToOihwTest, MovesEveryElement) {
  const auto hwio = torch::arange(2 * 3 * 4 * 5, torch::kFloat32).reshape({2, 3, 4, 5});
  const auto oihw = HwioToOihw(hwio);
  ASSERT_EQ(oihw.sizes(), (std::vector<int64_t>{5, 4, 2, 3}));
  EXPECT_EQ(oihw[4][3][1][2].item<float>(), hwio[1][2][3][4].item<float>());
  EXPECT_TRUE(oihw.is_contiguous());
}

TEST(RealWeightsTest, FaceRecognitionManifestAsDocumented) {
  const auto w = TfjsWeights::Read(testing::FaceApiWeightsDir() + "/face_recognition_model-weights_manifest.json");
  ASSERT_TRUE(w.ok()) << w.status() << " (deploy/setup.sh unpacks the weights)";
  EXPECT_EQ(w->names().size(), 117U);
  EXPECT_EQ(w->parameter_count(), 5'614'592);
  FaceResNet net;
  EXPECT_TRUE(net.LoadFromTfjs(*w).ok());
}

TEST(RealWeightsTest, MtcnnManifestAsDocumented) {
  const auto w = TfjsWeights::Read(testing::FaceApiWeightsDir() + "/mtcnn_model-weights_manifest.json");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->names().size(), 50U);
  EXPECT_EQ(w->parameter_count(), 495'850);
  EXPECT_TRUE(PNet()->LoadFromTfjs(*w).ok());
  EXPECT_TRUE(RNet()->LoadFromTfjs(*w).ok());
  EXPECT_TRUE(ONet()->LoadFromTfjs(*w).ok());
}

TEST(RealWeightsTest, NetworkRefusesAnotherNetworksWeights) {
  const auto w = TfjsWeights::Read(testing::FaceApiWeightsDir() + "/mtcnn_model-weights_manifest.json");
  ASSERT_TRUE(w.ok()) << w.status();
  FaceResNet net;
  const auto status = net.LoadFromTfjs(*w);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("conv32_down/conv/filters"));
}

}  // namespace
}  // namespace veriface
