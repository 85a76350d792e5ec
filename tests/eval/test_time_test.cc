// Test-time views: the spec grammar, what each view cuts, how a bundle stores its setting, and how the
// core embedder averages a face's stacked crops.

#include "core/model/test_time.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "core/align/aligner.h"
#include "core/model/face_model.h"
#include "core/model/model_spec.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Keys(const TtaConfig& c) {
  std::vector<std::string> keys;
  for (const ChipView& v : c.views) keys.push_back(v.Key());
  return keys;
}

TEST(ParseTta, BuildsTheViews) {
  EXPECT_THAT(Keys(*ParseTta("none")), ElementsAre("template dx=0 dy=0 zoom=1"));
  EXPECT_THAT(Keys(*ParseTta("")), ElementsAre("template dx=0 dy=0 zoom=1"));
  EXPECT_THAT(Keys(*ParseTta("flip")), ElementsAre("template dx=0 dy=0 zoom=1", "template dx=0 dy=0 zoom=1 flip"));
  EXPECT_THAT(Keys(*ParseTta("shift=2")),
              ElementsAre("template dx=0 dy=0 zoom=1", "template dx=-2 dy=0 zoom=1", "template dx=2 dy=0 zoom=1",
                          "template dx=0 dy=-2 zoom=1", "template dx=0 dy=2 zoom=1"));
  EXPECT_EQ(ParseTta("flip+shift=2")->views.size(), 10u);
  EXPECT_THAT(Keys(*ParseTta("zoom=0.1")),
              ElementsAre("template dx=0 dy=0 zoom=1", "template dx=0 dy=0 zoom=0.9", "template dx=0 dy=0 zoom=1.1"));
  EXPECT_THAT(Keys(*ParseTta("faceapi + nobase + flip")), ElementsAre("faceapi", "faceapi flip"));
  EXPECT_EQ(ParseTta(" flip + faceapi ")->spec, "flip+faceapi");
}

TEST(ParseTta, SeparatesCropsFromMirroring) {
  const TtaConfig c = *ParseTta("flip+shift=3+faceapi");
  EXPECT_TRUE(c.flip);
  EXPECT_EQ(c.crops.size(), 6u);  // template, four shifts, face-api's crop
  EXPECT_EQ(c.views.size(), 12u);
  for (const ChipView& v : c.crops) EXPECT_FALSE(v.flip);
  EXPECT_EQ(c.crops.back().crop, CropKind::kFaceApi);
  EXPECT_FALSE(ParseTta("shift=3")->flip);
}

TEST(TtaSpec, JoinsMirroringAndCrops) {
  EXPECT_EQ(TtaSpec(true, "none"), "flip");
  EXPECT_EQ(TtaSpec(false, "none"), "none");
  EXPECT_EQ(TtaSpec(true, "shift=3+faceapi"), "flip+shift=3+faceapi");
  EXPECT_EQ(TtaSpec(false, "faceapi"), "faceapi");
}

TEST(ParseTta, RejectsBadTerms) {
  EXPECT_THAT(ParseTta("flip+blur").status().message(), HasSubstr("unknown test-time augmentation term 'blur'"));
  EXPECT_THAT(ParseTta("shift=x").status().message(), HasSubstr("'shift=x': expected a number"));
  EXPECT_THAT(ParseTta("zoom=2").status().message(), HasSubstr("[0.001, 0.5]"));
  EXPECT_THAT(ParseTta("nobase").status().message(), HasSubstr("leaves no view"));
}

// A textured image whose landmarks sit exactly on the 150-pixel template shifted by (40, 30): the
// template warp is then a pure translation, scale 1.
struct Scene {
  cv::Mat rgb;
  Landmarks5 landmarks;
};
Scene MakeScene() {
  Scene s;
  s.rgb = cv::Mat(250, 250, CV_8UC3);
  cv::randu(s.rgb, 0, 255);
  const std::vector<cv::Point2d> t = FaceTemplate(150);
  for (size_t i = 0; i < 5; ++i) s.landmarks[i] = t[i] + cv::Point2d(40, 30);
  return s;
}

TEST(MakeChip, ShiftedViewMovesTheFaceInTheChip) {
  const Scene s = MakeScene();
  ChipView base, right, down;
  right.shift_x = 3;
  down.shift_y = -2;
  const cv::Mat b = MakeChip(s.rgb, s.landmarks, 150, base);
  const cv::Mat r = MakeChip(s.rgb, s.landmarks, 150, right);
  const cv::Mat d = MakeChip(s.rgb, s.landmarks, 150, down);
  ASSERT_EQ(b.size(), cv::Size(150, 150));
  EXPECT_EQ(b.at<cv::Vec3b>(0, 0), s.rgb.at<cv::Vec3b>(30, 40));
  // The face moved 3 pixels right: chip column x+3 shows what column x showed.
  EXPECT_EQ(cv::norm(r(cv::Rect(3, 0, 147, 150)), b(cv::Rect(0, 0, 147, 150)), cv::NORM_INF), 0.0);
  // ... and 2 pixels up.
  EXPECT_EQ(cv::norm(d(cv::Rect(0, 0, 150, 148)), b(cv::Rect(0, 2, 150, 148)), cv::NORM_INF), 0.0);
}

TEST(MakeChip, FlipMirrorsAndZoomEnlarges) {
  const Scene s = MakeScene();
  ChipView base, mirrored, zoomed;
  mirrored.flip = true;
  zoomed.zoom = 2;
  const cv::Mat b = MakeChip(s.rgb, s.landmarks, 150, base);
  const cv::Mat m = MakeChip(s.rgb, s.landmarks, 150, mirrored);
  EXPECT_EQ(m.at<cv::Vec3b>(10, 0), b.at<cv::Vec3b>(10, 149));
  // Zoom 2 about the chip centre: chip pixel (75 + 2k) shows image pixel (40 + 75 + k).
  const cv::Mat z = MakeChip(s.rgb, s.landmarks, 150, zoomed);
  EXPECT_EQ(z.at<cv::Vec3b>(75 + 20, 75 + 10), s.rgb.at<cv::Vec3b>(30 + 75 + 10, 40 + 75 + 5));
}

TEST(CutCrops, CutsEachCropInOrder) {
  const Scene s = MakeScene();
  const TtaConfig c = *ParseTta("shift=3+faceapi");
  const FaceViews views = CutCrops(s.rgb, s.landmarks, 150, c.crops);
  ASSERT_EQ(views.crops.size(), 6u);
  for (size_t i = 0; i < c.crops.size(); ++i) {
    ASSERT_EQ(views.crops[i].size(), cv::Size(150, 150));
    ASSERT_EQ(views.crops[i].type(), CV_8UC3);
    const cv::Mat one = MakeChip(s.rgb, s.landmarks, 150, c.crops[i]);
    EXPECT_EQ(cv::norm(views.crops[i], one, cv::NORM_INF), 0.0) << c.crops[i].Key();
  }
}

// model.json's test_time: mirroring and crops, each in one place.
nlohmann::json MinimalModelJson() {
  return {{"format_version", ModelSpec::kFormatVersion},
          {"model_id", "x"},
          {"detector", {{"arch", "mtcnn"}}},
          {"backbone", {{"arch", "face-resnet"}}},
          {"head", {{"arch", "identity"}}}};
}

TEST(ModelSpecTestTime, ABundleWithoutCropsIsTheTemplateAlone) {
  nlohmann::json j = MinimalModelJson();
  j["test_time"] = {{"flip_average", true}};  // as written before crops existed
  const auto spec = ModelSpec::FromJson(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->crops, "none");
  EXPECT_EQ(spec->TestTimeSpec(), "flip");
}

TEST(ModelSpecTestTime, CropsRoundTripAndAreChecked) {
  nlohmann::json j = MinimalModelJson();
  j["test_time"] = {{"flip_average", true}, {"crops", " shift=3 + faceapi"}};
  const auto spec = ModelSpec::FromJson(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->crops, "shift=3+faceapi");
  EXPECT_EQ(spec->TestTimeSpec(), "flip+shift=3+faceapi");
  EXPECT_EQ(spec->ToJson()["test_time"]["crops"], "shift=3+faceapi");
  EXPECT_EQ(ModelSpec::FromJson(spec->ToJson())->crops, "shift=3+faceapi");

  j["test_time"]["crops"] = "flip+shift=3";
  EXPECT_THAT(ModelSpec::FromJson(j).status().message(), HasSubstr("set test_time.flip_average instead"));
  j["test_time"]["crops"] = "shift=3+blur";
  EXPECT_THAT(ModelSpec::FromJson(j).status().message(), HasSubstr("test_time.crops: unknown"));
}

// Found by fuzz/model_spec_fuzzer: a number outside its field's type (1e80 for an int) was converted with
// undefined behaviour; now it is refused, naming the field.
TEST(ModelSpecNumbers, OutOfRangeOrMistypedNumbersAreRefused) {
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"min_face_size", 1e80}, {"min_face_size", 20.5}, {"max_scales", "10"}, {"scale_factor", "0.7"}};
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(std::string(key) + "=" + value.dump());
    nlohmann::json j = MinimalModelJson();
    j["detector"]["defaults"][key] = value;
    const auto spec = ModelSpec::FromJson(j);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(std::string("detector.defaults.") + key));
  }
  nlohmann::json j = MinimalModelJson();
  j["embedding_dim"] = -1e30;
  EXPECT_THAT(std::string(ModelSpec::FromJson(j).status().message()), HasSubstr("'embedding_dim'"));
  j = MinimalModelJson();
  j["detector"]["defaults"]["score_thresholds"] = {0.6, 0.7};
  EXPECT_THAT(std::string(ModelSpec::FromJson(j).status().message()), HasSubstr("must be 3 numbers"));
}

// The embedder's contract for a face's views, on the real descriptor: the features of every crop and
// its mirror are averaged before the head; one crop is the plain flip average, unchanged.
TEST(EmbedderViews, AverageTheFeaturesOfEveryCropAndMirror) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  const Embedder& embedder = model->embedder();
  ASSERT_TRUE(embedder.options().flip_average);
  const Scene s = MakeScene();
  const TtaConfig c = *ParseTta("flip+shift=3");
  std::vector<cv::Mat> chips;
  for (const ChipView& v : c.views) chips.push_back(MakeChip(s.rgb, s.landmarks, 150, v));
  const torch::Tensor want = torch::nn::functional::normalize(
      embedder.Features(chips).value().mean(0, /*keepdim=*/true), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const FaceViews views = CutCrops(s.rgb, s.landmarks, 150, c.crops);
  const torch::Tensor got = embedder.Embed({views, views}).value();
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 128}));
  EXPECT_LT((got[0] - want[0]).abs().max().item<float>(), 1e-5);
  EXPECT_LT((got[1] - want[0]).abs().max().item<float>(), 1e-5);

  const cv::Mat plain = MakeChip(s.rgb, s.landmarks, 150, ChipView());
  cv::Mat mirrored;
  cv::flip(plain, mirrored, 1);
  const torch::Tensor flip_avg = torch::nn::functional::normalize(
      embedder.Features({plain, mirrored}).value().mean(0, true), torch::nn::functional::NormalizeFuncOptions().dim(1));
  EXPECT_LT((embedder.Embed({plain}).value()[0] - flip_avg[0]).abs().max().item<float>(), 1e-5);

  // Views that are not squares of one size, or faces with different numbers of views, are refused.
  const cv::Mat tall(200, 150, CV_8UC3, cv::Scalar::all(0));
  EXPECT_EQ(embedder.Embed({tall}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(embedder.Embed({views, FaceViews(plain)}).status().code(), absl::StatusCode::kInvalidArgument);
  const cv::Mat small(100, 100, CV_8UC3, cv::Scalar::all(0));
  EXPECT_EQ(embedder.Embed({FaceViews(std::vector<cv::Mat>{plain, small})}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// On the CPU a batch of many faces' crops goes through the backbone in passes of kCpuChipsPerPass chips
// (large passes are slower per chip there); the passes must not change any face's embedding.
TEST(EmbedderPasses, ManyFacesInSeveralPassesEmbedAsOneByOne) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  const Embedder& embedder = model->embedder();
  ASSERT_EQ(embedder.options().max_chips_per_pass, kCpuChipsPerPass);
  const Scene s = MakeScene();
  const TtaConfig c = *ParseTta("flip+shift=3");
  std::vector<FaceViews> stacks;
  for (const int dx : {0, 4, -4, 8}) {  // four different faces: 4 x 10 chips, more than one pass
    Landmarks5 moved = s.landmarks;
    for (auto& p : moved) p.x += dx;
    stacks.push_back(CutCrops(s.rgb, moved, 150, c.crops));
  }
  ASSERT_GT(static_cast<int64_t>(stacks.size() * c.views.size()), kCpuChipsPerPass);
  const torch::Tensor together = embedder.Embed(stacks).value();
  ASSERT_EQ(together.size(0), 4);
  for (size_t i = 0; i < stacks.size(); ++i) {
    EXPECT_LT((together[static_cast<int64_t>(i)] - embedder.Embed({stacks[i]}).value()[0]).abs().max().item<float>(),
              1e-5)
        << "face " << i;
  }
  EXPECT_GT((together[0] - together[3]).abs().max().item<float>(), 1e-3);  // the faces do differ

  std::vector<cv::Mat> chips(kCpuChipsPerPass + 3, MakeChip(s.rgb, s.landmarks, 150, ChipView()));
  const torch::Tensor features = embedder.Features(chips).value();
  ASSERT_EQ(features.size(0), kCpuChipsPerPass + 3);
  EXPECT_LT((features[kCpuChipsPerPass + 2] - features[0]).abs().max().item<float>(), 1e-5);
}

TEST(FaceApiCrop, SquareAroundEyesAndMouthPaddedAtTheBorder) {
  cv::Mat rgb(200, 200, CV_8UC3, cv::Scalar(10, 200, 30));
  // Eyes at (80, 90) and (120, 90), mouth corners (85, 135), (115, 135): mouth centre (100, 135),
  // |mouth - eye| = sqrt(20^2 + 45^2) = 49.24, side floor(49.24 / 0.45) = 109.
  Landmarks5 lm = {cv::Point2d(80, 90), {120, 90}, {100, 110}, {85, 135}, {115, 135}};
  const cv::Mat chip = FaceApiCrop(rgb, lm, 150);
  ASSERT_EQ(chip.size(), cv::Size(150, 150));
  EXPECT_EQ(chip.at<cv::Vec3b>(75, 75), cv::Vec3b(10, 200, 30));
  // Move the face down to the bottom edge: the crop is clipped to 62 of its 109 rows and zero-padded
  // back to a square, 23 rows above and 24 below (face-api's rounding).
  for (auto& p : lm) p.y += 80;
  const cv::Mat edge = FaceApiCrop(rgb, lm, 150);
  EXPECT_EQ(edge.at<cv::Vec3b>(2, 75), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(edge.at<cv::Vec3b>(147, 75), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(edge.at<cv::Vec3b>(75, 75), cv::Vec3b(10, 200, 30));
}

}  // namespace
}  // namespace veriface
