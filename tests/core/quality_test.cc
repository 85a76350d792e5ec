// Face quality: degrading a real LFW photo on purpose (blur, darkening, brightening, downscaling,
// rotation) moves the matching measurement the right way and, far enough, names the right reason; the
// rating follows the policy's bounds exactly.

#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/quality/face_quality.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

bool HasIssue(const FaceQuality& q, QualityReason reason, QualityLevel level) {
  return std::any_of(q.issues.begin(), q.issues.end(),
                     [&](const QualityIssue& i) { return i.reason == reason && i.level == level; });
}

class QualityOnLfwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::DefaultModel();
    ASSERT_NE(model_, nullptr);
    const cv::Mat bgr = cv::imread(testing::LfwDir() + "/Colin_Powell/Colin_Powell_0001.jpg");
    ASSERT_FALSE(bgr.empty()) << "LFW image not found under " << testing::LfwDir();
    cv::cvtColor(bgr, rgb_, cv::COLOR_BGR2RGB);
  }

  // The central face the detector finds in `rgb`; fails the test when there is none.
  FaceDetection Central(const cv::Mat& rgb) const {
    auto faces = model_->Detect(rgb, model_->spec().detector_defaults);
    EXPECT_TRUE(faces.ok()) << faces.status();
    if (!faces.ok() || faces->empty()) {
      ADD_FAILURE() << "no face found";
      return {};
    }
    return (*faces)[static_cast<size_t>(SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows))];
  }

  FaceQuality Assess(const cv::Mat& rgb) const { return AssessFace(rgb, Central(rgb), QualityPolicy{}); }

  std::shared_ptr<const FaceModel> model_;
  cv::Mat rgb_;
};

TEST_F(QualityOnLfwTest, TheCleanPortraitIsHighQuality) {
  const FaceQuality q = Assess(rgb_);
  EXPECT_EQ(q.level, QualityLevel::kHigh) << DescribeIssues(q, QualityPolicy{}, QualityLevel::kMedium);
  EXPECT_GT(q.measures.interocular_px, 30);
  // Within the spread of the estimate over LFW's portraits (bench/results/quality/view1_pose.json).
  EXPECT_LT(std::abs(q.measures.yaw_deg), 30);
  EXPECT_LT(std::abs(q.measures.pitch_deg), 25);
  EXPECT_LT(std::abs(q.measures.roll_deg), 15);
  EXPECT_GT(q.measures.detector_score, 0.95);
}

TEST_F(QualityOnLfwTest, BlurLowersSharpnessStepByStepUntilItIsLow) {
  const FaceDetection face = Central(rgb_);  // the clean detection: this measures blur, not the detector
  double previous = MeasureFace(rgb_, face).sharpness;
  for (const double sigma : {1.0, 2.0, 3.0, 5.0}) {
    cv::Mat blurred;
    cv::GaussianBlur(rgb_, blurred, cv::Size(), sigma);
    const QualityMeasures m = MeasureFace(blurred, face);
    EXPECT_LT(m.sharpness, previous) << "sigma " << sigma;
    previous = m.sharpness;
  }
  cv::Mat heavy;
  cv::GaussianBlur(rgb_, heavy, cv::Size(), 5.0);
  const FaceQuality q = RateFace(MeasureFace(heavy, face), QualityPolicy{});
  EXPECT_EQ(q.level, QualityLevel::kLow);
  EXPECT_TRUE(HasIssue(q, QualityReason::kLowSharpness, QualityLevel::kLow));
}

TEST_F(QualityOnLfwTest, DarkeningAndBrighteningMoveBrightnessButNotSharpness) {
  const FaceDetection face = Central(rgb_);
  const QualityMeasures clean = MeasureFace(rgb_, face);
  cv::Mat dark;
  rgb_.convertTo(dark, -1, 0.05);
  const FaceQuality qd = RateFace(MeasureFace(dark, face), QualityPolicy{});
  EXPECT_LT(qd.measures.brightness, clean.brightness * 0.07);
  EXPECT_TRUE(HasIssue(qd, QualityReason::kLowBrightness, QualityLevel::kLow));
  // Sharpness is relative to contrast: a darker photo of a sharp face is not called blurred.
  EXPECT_FALSE(HasIssue(qd, QualityReason::kLowSharpness, QualityLevel::kLow));

  cv::Mat bright;
  rgb_.convertTo(bright, -1, 1.0, 160);
  const FaceQuality qb = RateFace(MeasureFace(bright, face), QualityPolicy{});
  EXPECT_GT(qb.measures.brightness, QualityPolicy{}.bright_low);
  EXPECT_TRUE(HasIssue(qb, QualityReason::kHighBrightness, QualityLevel::kLow));
}

TEST_F(QualityOnLfwTest, DownscalingShrinksTheFaceUntilItIsSmall) {
  const QualityMeasures clean = Assess(rgb_).measures;
  // Downscaled and padded back onto a canvas, so that the detector still searches a normal-sized image
  // (for faces down to 12 pixels, as a request may ask).
  constexpr double kScale = 0.15;
  cv::Mat small;
  cv::resize(rgb_, small, cv::Size(), kScale, kScale, cv::INTER_AREA);
  cv::Mat canvas(rgb_.size(), CV_8UC3, cv::Scalar(128, 128, 128));
  small.copyTo(
      canvas(cv::Rect((canvas.cols - small.cols) / 2, (canvas.rows - small.rows) / 2, small.cols, small.rows)));
  DetectorOptions options = model_->spec().detector_defaults;
  options.min_face_size = 12;
  const auto faces = model_->Detect(canvas, options);
  ASSERT_TRUE(faces.ok()) << faces.status();
  ASSERT_FALSE(faces->empty()) << "the shrunk face is not found";
  const FaceQuality q = AssessFace(canvas, faces->front(), QualityPolicy{});
  EXPECT_NEAR(q.measures.interocular_px, clean.interocular_px * kScale, clean.interocular_px * 0.04);
  // The few pixels are enlarged into the chip: the small face is also unsharp.
  EXPECT_LT(q.measures.sharpness, clean.sharpness);
  EXPECT_TRUE(HasIssue(q, QualityReason::kSmallFace, QualityLevel::kLow));
  EXPECT_EQ(q.level, QualityLevel::kLow);
}

TEST_F(QualityOnLfwTest, RotationIsMeasuredAsRollAndLeavesYawAndPitch) {
  const QualityMeasures clean = Assess(rgb_).measures;
  cv::Mat rotated;
  const cv::Mat turn = cv::getRotationMatrix2D(cv::Point2f(rgb_.cols / 2.0F, rgb_.rows / 2.0F), -25.0, 1.0);
  cv::warpAffine(rgb_, rotated, turn, rgb_.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  const QualityMeasures m = Assess(rotated).measures;
  // OpenCV's positive angle turns the picture anticlockwise; -25 turns it clockwise, so the eye line
  // slopes down to the right by 25 degrees more.
  EXPECT_NEAR(m.roll_deg - clean.roll_deg, 25.0, 4.0);
  EXPECT_NEAR(m.yaw_deg, clean.yaw_deg, 6.0);
  EXPECT_NEAR(m.pitch_deg, clean.pitch_deg, 6.0);
}

// Landmarks of a mean frontal face, then the nose moved: sideways reads as yaw, up and down as pitch.
TEST(PoseTest, NoseOffsetsReadAsYawAndPitchWithTheRightSigns) {
  const cv::Mat grey(200, 200, CV_8UC3, cv::Scalar(120, 120, 120));
  FaceDetection face;
  face.score = 0.99F;
  face.landmarks = {cv::Point2d(70, 80), cv::Point2d(130, 80), cv::Point2d(100, 116), cv::Point2d(75, 148),
                    cv::Point2d(125, 148)};
  const QualityMeasures frontal = MeasureFace(grey, face);
  EXPECT_NEAR(frontal.yaw_deg, 0, 1);
  EXPECT_NEAR(frontal.roll_deg, 0, 1e-9);

  FaceDetection right = face;
  right.landmarks[2].x += 20;
  const double yaw = MeasureFace(grey, right).yaw_deg;
  EXPECT_GT(yaw, 20);
  EXPECT_LT(yaw, 60);

  FaceDetection up = face;
  up.landmarks[2].y -= 12;  // the nose tip rises towards the eyes when the head tilts up
  EXPECT_GT(MeasureFace(grey, up).pitch_deg, frontal.pitch_deg + 10);
  FaceDetection down = face;
  down.landmarks[2].y += 12;
  EXPECT_LT(MeasureFace(grey, down).pitch_deg, frontal.pitch_deg - 10);

  // A flat grey chip has no detail at all.
  EXPECT_EQ(frontal.sharpness, 0);
}

TEST(RateFaceTest, FollowsThePolicyBoundsAndListsTheWorstFirst) {
  const QualityPolicy policy;
  QualityMeasures m;
  m.interocular_px = policy.interocular_medium_px;  // exactly on the bound: high
  m.sharpness = policy.sharpness_medium + 0.1;
  m.yaw_deg = policy.pose_medium_deg - 1;
  m.brightness = 120;
  m.detector_score = 0.99;
  EXPECT_EQ(RateFace(m, policy).level, QualityLevel::kHigh);
  EXPECT_TRUE(RateFace(m, policy).issues.empty());

  m.yaw_deg = -(policy.pose_medium_deg + 1);  // medium, either way round
  m.sharpness = policy.sharpness_low - 0.01;  // low
  const FaceQuality q = RateFace(m, policy);
  EXPECT_EQ(q.level, QualityLevel::kLow);
  ASSERT_EQ(q.issues.size(), 2U);
  EXPECT_EQ(q.issues[0].reason, QualityReason::kLowSharpness);
  EXPECT_EQ(q.issues[0].level, QualityLevel::kLow);
  EXPECT_EQ(q.issues[1].reason, QualityReason::kExtremePose);
  EXPECT_EQ(q.issues[1].level, QualityLevel::kMedium);
  const std::string low_only = DescribeIssues(q, policy, QualityLevel::kLow);
  EXPECT_NE(low_only.find("LOW_SHARPNESS"), std::string::npos) << low_only;
  EXPECT_EQ(low_only.find("EXTREME_POSE"), std::string::npos) << low_only;
  EXPECT_NE(DescribeIssues(q, policy, QualityLevel::kMedium).find("EXTREME_POSE"), std::string::npos);
}

TEST(QualityNamesTest, LevelsParseAndPrint) {
  EXPECT_EQ(ParseQualityLevel("Medium"), QualityLevel::kMedium);
  EXPECT_EQ(ParseQualityLevel("low"), QualityLevel::kLow);
  EXPECT_EQ(ParseQualityLevel("HIGH"), QualityLevel::kHigh);
  EXPECT_EQ(ParseQualityLevel("best"), QualityLevel::kUnspecified);
  EXPECT_STREQ(QualityLevelName(QualityLevel::kMedium), "MEDIUM");
  EXPECT_STREQ(QualityReasonName(QualityReason::kExtremePose), "EXTREME_POSE");
}

}  // namespace
}  // namespace veriface
