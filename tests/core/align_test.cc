// Alignment: the least-squares similarity fit recovers a known transform, never reflects, and the
// warp puts the landmarks where the template says.

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/align/aligner.h"
#include "core/align/similarity.h"

namespace veriface {
namespace {

cv::Point2d Apply(const cv::Matx23d& m, const cv::Point2d& p) {
  return {m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2), m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2)};
}

TEST(FitSimilarityTest, RecoversAKnownTransform) {
  const double scale = 1.7, angle = 20.0 * M_PI / 180.0;
  const cv::Matx23d truth(scale * std::cos(angle), -scale * std::sin(angle), 12.5,  //
                          scale * std::sin(angle), scale * std::cos(angle), -7.25);
  const std::vector<cv::Point2d> src{{10, 20}, {60, 22}, {35, 50}, {15, 80}, {55, 78}};
  std::vector<cv::Point2d> dst;
  for (const auto& p : src) dst.push_back(Apply(truth, p));
  const cv::Matx23d fit = FitSimilarity(src, dst);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(fit(r, c), truth(r, c), 1e-9) << r << "," << c;
  }
}

TEST(FitSimilarityTest, LeastSquaresWithNoiseAndNoReflection) {
  // Mirrored targets cannot be reached by a similarity: the fit stays a proper rotation (det > 0).
  const std::vector<cv::Point2d> src{{0, 0}, {10, 0}, {0, 10}, {10, 10}};
  const std::vector<cv::Point2d> mirrored{{10, 0}, {0, 0}, {10, 10}, {0, 10}};
  const cv::Matx23d fit = FitSimilarity(src, mirrored);
  EXPECT_GE(fit(0, 0) * fit(1, 1) - fit(0, 1) * fit(1, 0), 0.0);
  EXPECT_NEAR(fit(0, 1), -fit(1, 0), 1e-12);
  EXPECT_NEAR(fit(0, 0), fit(1, 1), 1e-12);
}

TEST(FaceTemplateTest, MatchesTheDocumentedPoints) {
  const auto t = FaceTemplate(150);
  ASSERT_EQ(t.size(), 5U);
  EXPECT_NEAR(t[0].x, 47.55, 0.01);
  EXPECT_NEAR(t[0].y, 46.60, 0.01);
  EXPECT_NEAR(t[1].x, 100.48, 0.01);
  EXPECT_NEAR(t[2].x, 74.01, 0.01);
  EXPECT_NEAR(t[2].y, 76.56, 0.01);
  EXPECT_NEAR(t[3].x, 50.41, 0.01);
  EXPECT_NEAR(t[4].y, 103.02, 0.01);
}

// Draws bright dots at landmark positions in a dark image, aligns, and finds the dots in the chip.
TEST(AlignFaceTest, LandmarksLandOnTheTemplate) {
  cv::Mat image = cv::Mat::zeros(400, 300, CV_8UC3);
  const double angle = -15.0 * M_PI / 180.0, scale = 1.6;
  const cv::Matx23d place(scale * std::cos(angle), -scale * std::sin(angle), 60,  //
                          scale * std::sin(angle), scale * std::cos(angle), 110);
  Landmarks5 landmarks{};
  const auto t = FaceTemplate(150);
  for (size_t i = 0; i < 5; ++i) {
    landmarks[i] = Apply(place, t[i]);
    cv::circle(image,
               cv::Point(static_cast<int>(std::lround(landmarks[i].x)), static_cast<int>(std::lround(landmarks[i].y))),
               3, cv::Scalar(255, 255, 255), cv::FILLED);
  }
  const AlignedChip aligned = AlignFace(image, landmarks, 150);
  EXPECT_EQ(aligned.shrink, 1);
  ASSERT_EQ(aligned.chip.size(), cv::Size(150, 150));
  for (size_t i = 0; i < 5; ++i) {
    const cv::Vec3b px =
        aligned.chip.at<cv::Vec3b>(static_cast<int>(std::lround(t[i].y)), static_cast<int>(std::lround(t[i].x)));
    EXPECT_GT(px[0], 128) << "landmark " << i;
  }
}

TEST(AlignFaceTest, LargeFacesArePreShrunk) {
  cv::Mat image(1200, 1200, CV_8UC3, cv::Scalar(90, 90, 90));
  Landmarks5 landmarks{};
  const auto t = FaceTemplate(150);
  for (size_t i = 0; i < 5; ++i) landmarks[i] = t[i] * 5.0 + cv::Point2d(100, 100);  // a face 5x the chip
  const AlignedChip aligned = AlignFace(image, landmarks, 150);
  EXPECT_EQ(aligned.shrink, 5);
  EXPECT_NEAR(std::hypot(aligned.affine(0, 0), aligned.affine(0, 1)), 1.0, 1e-9);
  EXPECT_EQ(aligned.chip.at<cv::Vec3b>(75, 75), cv::Vec3b(90, 90, 90));
}

TEST(AlignFaceJitteredTest, ZeroJitterIsThePlainAlignment) {
  cv::Mat image(200, 200, CV_8UC3);
  cv::randu(image, 0, 255);
  Landmarks5 landmarks{};
  const auto t = FaceTemplate(150);
  for (size_t i = 0; i < 5; ++i) landmarks[i] = t[i] * 0.9 + cv::Point2d(20, 25);
  const AlignedChip plain = AlignFace(image, landmarks, 150);
  const AlignedChip jittered = AlignFaceJittered(image, landmarks, 150, {0, 0}, 1.0);
  EXPECT_EQ(cv::norm(plain.chip, jittered.chip, cv::NORM_INF), 0.0);
  const AlignedChip moved = AlignFaceJittered(image, landmarks, 150, {2, 0}, 1.0);
  EXPECT_GT(cv::norm(plain.chip, moved.chip, cv::NORM_INF), 0.0);
}

}  // namespace
}  // namespace veriface
