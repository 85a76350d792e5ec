// MTCNN box arithmetic: overlap, non-maximum suppression, squaring and calibration, each checked
// against values worked out by hand in face-api's conventions.

#include "core/detect/box_ops.h"

#include <gtest/gtest.h>

#include "core/detect/face.h"
#include "core/detect/mtcnn.h"

namespace veriface {
namespace {

using mtcnn::Box;
using mtcnn::Overlap;

TEST(BoxOverlapTest, UnionAndMinimum) {
  const Box a{0, 0, 10, 10};  // area 100
  const Box b{5, 5, 15, 25};  // area 200, intersection 5 x 5 = 25
  EXPECT_DOUBLE_EQ(mtcnn::BoxOverlap(a, b, Overlap::kUnion), 25.0 / 275.0);
  EXPECT_DOUBLE_EQ(mtcnn::BoxOverlap(a, b, Overlap::kMinimum), 25.0 / 100.0);
  EXPECT_DOUBLE_EQ(mtcnn::BoxOverlap(a, Box{20, 20, 30, 30}, Overlap::kUnion), 0.0);
  EXPECT_DOUBLE_EQ(mtcnn::BoxOverlap(a, a, Overlap::kUnion), 1.0);
}

TEST(NonMaxSuppressionTest, KeepsBestAndDropsOverlapsAboveThreshold) {
  const std::vector<Box> boxes{{0, 0, 10, 10}, {1, 1, 11, 11}, {50, 50, 60, 60}, {0, 0, 10, 12}};
  const std::vector<float> scores{0.9F, 0.95F, 0.5F, 0.6F};
  // 1 is best; 0 overlaps it by 81/119 = 0.68 > 0.5 (dropped); 3 overlaps it by 90/130 = 0.69 (dropped).
  EXPECT_EQ(mtcnn::NonMaxSuppression(boxes, scores, 0.5, Overlap::kUnion), (std::vector<int>{1, 2}));
  // At 0.7, 0 and 3 survive box 1, but once 0 is kept, 3 overlaps it by 100/120 = 0.83: dropped.
  EXPECT_EQ(mtcnn::NonMaxSuppression(boxes, scores, 0.7, Overlap::kUnion), (std::vector<int>{1, 0, 2}));
  // At 0.9 nothing overlaps enough: all kept, best first.
  EXPECT_EQ(mtcnn::NonMaxSuppression(boxes, scores, 0.9, Overlap::kUnion), (std::vector<int>{1, 0, 3, 2}));
}

TEST(NonMaxSuppressionTest, OverlapEqualToThresholdIsKept) {
  const std::vector<Box> boxes{{0, 0, 10, 10}, {0, 0, 10, 5}};  // overlap 50 / 100 = 0.5 exactly
  EXPECT_EQ(mtcnn::NonMaxSuppression(boxes, {0.9F, 0.8F}, 0.5, Overlap::kUnion), (std::vector<int>{0, 1}));
}

TEST(NonMaxSuppressionTest, EqualScoresTakeTheLaterIndexFirst) {
  const std::vector<Box> boxes{{0, 0, 10, 10}, {100, 0, 110, 10}, {200, 0, 210, 10}};
  EXPECT_EQ(mtcnn::NonMaxSuppression(boxes, {0.8F, 0.8F, 0.8F}, 0.5, Overlap::kUnion), (std::vector<int>{2, 1, 0}));
}

TEST(NonMaxSuppressionTest, EmptyInput) { EXPECT_TRUE(mtcnn::NonMaxSuppression({}, {}, 0.5, Overlap::kUnion).empty()); }

TEST(JsRoundTest, HalvesGoUp) {
  EXPECT_EQ(mtcnn::JsRound(2.5), 3.0);
  EXPECT_EQ(mtcnn::JsRound(-2.5), -2.0);
  EXPECT_EQ(mtcnn::JsRound(2.4999), 2.0);
  EXPECT_EQ(mtcnn::JsRound(-0.5), 0.0);
}

TEST(ToSquareRoundedTest, GrowsShorterSideSymmetrically) {
  // w = 10, h = 20: x -= 5, w = 20.
  EXPECT_EQ(mtcnn::ToSquareRounded({10, 10, 20, 30}), (Box{5, 10, 25, 30}));
  // w = 21, h = 10: y -= 5.5 -> 4.5 -> rounds to 5 (half up); h = 21.
  EXPECT_EQ(mtcnn::ToSquareRounded({0, 10, 21, 20}), (Box{0, 5, 21, 26}));
  // Already square, fractional: each of x, y, w, h rounded.
  EXPECT_EQ(mtcnn::ToSquareRounded({0.4, 0.6, 10.4, 10.6}), (Box{0, 1, 10, 11}));
}

TEST(CalibrateTest, RegressionIsScaledByBoxSizeThenSquared) {
  // w = h = 20; (0.1, -0.1, 0.2, 0) -> (12, 8, 34, 30): w = 22, h = 22 -> already square.
  EXPECT_EQ(mtcnn::Calibrate({10, 10, 30, 30}, {0.1F, -0.1F, 0.2F, 0.0F}), (Box{12, 8, 34, 30}));
  // (0, 0, 0.5, 0) -> (10, 10, 40, 30): w = 30, h = 20 -> y -= 5, h = 30.
  EXPECT_EQ(mtcnn::Calibrate({10, 10, 30, 30}, {0, 0, 0.5F, 0}), (Box{10, 5, 40, 35}));
}

TEST(PyramidScalesTest, FollowsTheDocumentedRecipe) {
  DetectorOptions options;  // min face 20 -> m = 0.6
  const auto scales = mtcnn::PyramidScales(250, 250, options);
  // 250 * 0.6 = 150 >= 12 ... levels while side >= 12: 150 * 0.709^k >= 12 for k <= 7 (8 levels);
  // all have floor(250 s) > 12 except the last (floor(250 * 0.6 * 0.709^7) = 13 > 12: kept).
  ASSERT_EQ(scales.size(), 8U);
  EXPECT_DOUBLE_EQ(scales[0], 0.6);
  EXPECT_NEAR(scales[1], 0.6 * 0.709, 1e-15);
  // A big image is capped at max_scales, keeping the largest scales.
  const auto big = mtcnn::PyramidScales(4000, 4000, options);
  ASSERT_EQ(big.size(), 10U);
  EXPECT_DOUBLE_EQ(big[0], 0.6);
  options.max_scales = 3;
  EXPECT_EQ(mtcnn::PyramidScales(4000, 4000, options).size(), 3U);
  // Too small for any level.
  EXPECT_TRUE(mtcnn::PyramidScales(15, 15, DetectorOptions{}).empty());
}

TEST(DetectorOptionsTest, RejectsNonsense) {
  DetectorOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.min_face_size = 5;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.scale_factor = 1.0;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.score_thresholds[1] = 1.5F;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(SelectFaceTest, LargestCentralAndBestScore) {
  std::vector<FaceDetection> faces(3);
  faces[0].box = {0, 0, 10, 10};
  faces[0].score = 0.99F;
  faces[1].box = {40, 40, 60, 60};  // centred in a 100x100 image
  faces[1].score = 0.9F;
  faces[2].box = {70, 0, 100, 30};  // largest
  faces[2].score = 0.95F;
  EXPECT_EQ(SelectFace(faces, FaceSelection::kLargest, 100, 100), 2);
  EXPECT_EQ(SelectFace(faces, FaceSelection::kCentral, 100, 100), 1);
  EXPECT_EQ(SelectFace(faces, FaceSelection::kHighestScore, 100, 100), 0);
  EXPECT_EQ(SelectFace({}, FaceSelection::kLargest, 100, 100), -1);
  // A box mostly outside the image counts only by its visible part: 60 x 5 visible < 30 x 30.
  faces[0].box = {-50, -95, 60, 5};
  EXPECT_EQ(SelectFace(faces, FaceSelection::kLargest, 100, 100), 2);
}

}  // namespace
}  // namespace veriface
