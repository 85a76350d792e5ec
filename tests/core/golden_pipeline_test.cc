// The whole pipeline (decode -> MTCNN -> alignment -> descriptor) against lfw_pipeline.json: 24 LFW
// images and 2 derived ones. Tolerances from the goldens' README: same faces in the same order, boxes
// and landmarks within 2 px, scores within 1e-3, central-face descriptor within 0.03 (Euclidean);
// alignment: affine within 1e-4, chip pixels within 1 grey level; descriptor alone on the chip PNG:
// max abs diff < 1e-3 and Euclidean < 5e-3.

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/align/aligner.h"
#include "core/image/decode.h"
#include "tests/testing/goldens.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

torch::Tensor Vec(const nlohmann::json& j) { return torch::tensor(j.get<std::vector<double>>(), torch::kFloat64); }

Landmarks5 ToLandmarks(const nlohmann::json& j) {
  Landmarks5 out{};
  for (size_t i = 0; i < 5; ++i) out[i] = {j[i][0].get<double>(), j[i][1].get<double>()};
  return out;
}

class GoldenPipelineTest : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() { records_ = new nlohmann::json(testing::LoadGoldenJson("lfw_pipeline.json")); }
  static void TearDownTestSuite() {
    delete records_;  // gtest's suite-level fixture idiom
    records_ = nullptr;
  }
  const nlohmann::json& record() const { return (*records_)["images"][static_cast<size_t>(GetParam())]; }

  static nlohmann::json* records_;
};
nlohmann::json* GoldenPipelineTest::records_ = nullptr;

TEST_P(GoldenPipelineTest, MatchesReference) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  const auto& rec = record();
  SCOPED_TRACE(rec["name"].get<std::string>());
  const cv::Mat rgb = testing::GoldenImage(rec);
  ASSERT_EQ(rgb.rows, rec["height"].get<int>());
  ASSERT_EQ(rgb.cols, rec["width"].get<int>());

  // Candidate counts are a debugging aid: equal counts mean the cascade made the same decisions.
  const DetectorOptions options;
  const auto s1 = model->detector().Stage1(rgb, options);
  const auto s2 = model->detector().Stage2(rgb, s1, options);
  EXPECT_EQ(static_cast<int>(s1.boxes.size()), rec["candidates_after_stage1_stage2"][0].get<int>());
  EXPECT_EQ(static_cast<int>(s2.boxes.size()), rec["candidates_after_stage1_stage2"][1].get<int>());

  const auto faces = model->Detect(rgb, options);
  ASSERT_TRUE(faces.ok()) << faces.status();
  const auto& expected = rec["faces"];
  ASSERT_EQ(faces->size(), expected.size());
  for (size_t i = 0; i < faces->size(); ++i) {
    const FaceDetection& f = (*faces)[i];
    const auto& e = expected[i];
    EXPECT_NEAR(f.box.x1, e["box"][0].get<double>(), 2.0) << "face " << i;
    EXPECT_NEAR(f.box.y1, e["box"][1].get<double>(), 2.0) << "face " << i;
    EXPECT_NEAR(f.box.x2, e["box"][2].get<double>(), 2.0) << "face " << i;
    EXPECT_NEAR(f.box.y2, e["box"][3].get<double>(), 2.0) << "face " << i;
    EXPECT_NEAR(f.score, e["score"].get<double>(), 1e-3) << "face " << i;
    // Beyond the README's tolerance: the same float32 steps with the same OpenCV reproduce the boxes
    // exactly and the landmarks to ~1e-5 px. A gap here is a real divergence (resampling, rounding,
    // NMS order), found long before it moves a descriptor.
    EXPECT_EQ(f.box.x1, e["box"][0].get<double>()) << "face " << i;
    EXPECT_EQ(f.box.y2, e["box"][3].get<double>()) << "face " << i;
    for (size_t k = 0; k < 5; ++k) {
      EXPECT_NEAR(f.landmarks[k].x, e["landmarks"][k][0].get<double>(), 2.0) << "face " << i << " point " << k;
      EXPECT_NEAR(f.landmarks[k].y, e["landmarks"][k][1].get<double>(), 2.0) << "face " << i << " point " << k;
      EXPECT_NEAR(f.landmarks[k].x, e["landmarks"][k][0].get<double>(), 1e-3) << "face " << i << " point " << k;
    }
  }
  if (rec["central_face"].is_null()) {
    EXPECT_TRUE(faces->empty());
    return;
  }
  const int central = SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows);
  ASSERT_EQ(central, rec["central_face"].get<int>());

  // Alignment from the stored landmarks: the same matrix, the same chip.
  const AlignedChip stored = AlignFace(rgb, ToLandmarks(expected[static_cast<size_t>(central)]["landmarks"]), 150);
  EXPECT_EQ(stored.shrink, rec["affine_shrink"].get<int>());
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(stored.affine(r, c), rec["affine"][static_cast<size_t>(r)][static_cast<size_t>(c)].get<double>(),
                  1e-4);
    }
  }
  auto png = LoadImageFile(testing::GoldensDir() + "/" + rec["chip"].get<std::string>());
  ASSERT_TRUE(png.ok()) << png.status();
  cv::Mat diff;
  cv::absdiff(stored.chip, *png, diff);
  double max_pixel_diff = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_pixel_diff);
  EXPECT_LE(max_pixel_diff, 1.0);

  // The descriptor alone on the reference chip (tight), raw and flip-averaged.
  const auto& embedder = model->embedder();
  const auto raw = embedder.Features({*png}).value()[0].to(torch::kFloat64);
  const auto want = Vec(rec["descriptor_from_chip_png"]);
  EXPECT_LT((raw - want).abs().max().item<double>(), 1e-3);
  EXPECT_LT((raw - want).norm().item<double>(), 5e-3);
  cv::Mat mirrored;
  cv::flip(*png, mirrored, 1);
  const auto raw_mirror = embedder.Features({mirrored}).value()[0].to(torch::kFloat64);
  EXPECT_LT((raw_mirror - Vec(rec["descriptor_mirror"])).norm().item<double>(), 5e-3);
  const auto flip_avg = model->Embed({*png}).value()[0].to(torch::kFloat64);
  EXPECT_LT((flip_avg - Vec(rec["descriptor_flip_avg_normalized"])).norm().item<double>(), 5e-3);

  // End to end: our own landmarks, our own chip.
  const cv::Mat chip = model->Align(rgb, (*faces)[static_cast<size_t>(central)]);
  const auto end_to_end = embedder.Features({chip}).value()[0].to(torch::kFloat64);
  EXPECT_LT((end_to_end - Vec(rec["descriptor"])).norm().item<double>(), 0.03);
}

INSTANTIATE_TEST_SUITE_P(LfwGoldens, GoldenPipelineTest, ::testing::Range(0, 26),
                         [](const ::testing::TestParamInfo<int>& info) {
                           static const auto names = testing::LoadGoldenJson("lfw_pipeline.json");
                           std::string name = names["images"][static_cast<size_t>(info.param)]["name"];
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace veriface
