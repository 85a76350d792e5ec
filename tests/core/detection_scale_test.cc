// Detection on a scaled-down copy of a large image: the copy's size and the smallest face it can find,
// the mapping of faces back onto the full image, and, with the real model, that a group photo enlarged
// 3x and searched on a copy finds the same faces in the same places as the photo itself.

#include "core/detect/detection_scale.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "tests/testing/test_env.h"

namespace veriface {
namespace {

TEST(DetectionScaleTest, SmallImagesAreSearchedAsTheyAre) {
  const cv::Mat rgb(1080, 1920, CV_8UC3, cv::Scalar::all(0));
  DetectorOptions options;
  options.min_face_size = 30;
  const ScaledDetection s = ScaleForDetection(rgb, options, 4'000'000, 20);
  EXPECT_EQ(s.rgb.data, rgb.data);  // no copy
  EXPECT_EQ(s.options.min_face_size, 30);
  EXPECT_EQ(s.min_face_full, 30);
  EXPECT_EQ(ScaleForDetection(rgb, options, 0, 20).rgb.data, rgb.data);
}

TEST(DetectionScaleTest, LargeImagesAreSearchedOnACopyAndTheSmallestFaceGrows) {
  const cv::Mat rgb(3000, 4000, CV_8UC3, cv::Scalar::all(0));
  DetectorOptions options;  // min_face_size 20
  const ScaledDetection s = ScaleForDetection(rgb, options, 3'000'000, 20);
  EXPECT_EQ(s.rgb.cols, 2000);
  EXPECT_EQ(s.rgb.rows, 1500);
  EXPECT_DOUBLE_EQ(s.scale_x, 0.5);
  EXPECT_EQ(s.options.min_face_size, 20) << "never below the floor in the copy";
  EXPECT_EQ(s.min_face_full, 40);
  // A request for larger faces only is honoured in the full image's pixels.
  options.min_face_size = 100;
  const ScaledDetection large = ScaleForDetection(rgb, options, 3'000'000, 20);
  EXPECT_EQ(large.options.min_face_size, 50);
  EXPECT_EQ(large.min_face_full, 100);
}

TEST(DetectionScaleTest, FacesMapBackByEdgesAndPixelCentres) {
  const cv::Mat rgb(3000, 4000, CV_8UC3, cv::Scalar::all(0));
  const ScaledDetection s = ScaleForDetection(rgb, DetectorOptions{}, 3'000'000, 20);
  FaceDetection face;
  face.box = {100, 50, 150, 100};
  face.landmarks[0] = {119.5, 69.5};  // the centre of the copy's pixel (119, 69)...
  std::vector<FaceDetection> faces = {face};
  MapToFullImage(s, faces);
  EXPECT_DOUBLE_EQ(faces[0].box.x1, 200);
  EXPECT_DOUBLE_EQ(faces[0].box.y2, 200);
  EXPECT_DOUBLE_EQ(faces[0].landmarks[0].x, 239.5);  // ...covers full pixels 238..241: their centre
  EXPECT_DOUBLE_EQ(faces[0].landmarks[0].y, 139.5);
}

TEST(DetectionScaleTest, AnEnlargedGroupPhotoSearchedOnACopyFindsTheSameFaces) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  cv::Mat bgr = cv::imread(testing::GroupPhotosDir() + "/sample1.jpg", cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::Mat enlarged;
  cv::resize(rgb, enlarged, {}, 3, 3, cv::INTER_LINEAR);  // 5760x3840: 22 Mpixel
  const DetectorOptions options;
  const auto direct = model->Detect(rgb, options);
  ASSERT_TRUE(direct.ok()) << direct.status();
  // Searched on a copy the size of the photo itself (2.46 Mpixel), then mapped onto the enlargement.
  const ScaledDetection s =
      ScaleForDetection(enlarged, options, static_cast<int64_t>(rgb.cols) * rgb.rows, options.min_face_size);
  ASSERT_EQ(s.rgb.cols, rgb.cols);
  auto found = model->Detect(s.rgb, s.options);
  ASSERT_TRUE(found.ok()) << found.status();
  MapToFullImage(s, *found);
  ASSERT_GE(direct->size(), 3u);
  ASSERT_EQ(found->size(), direct->size());
  for (size_t i = 0; i < direct->size(); ++i) {
    // Scores shift a little with resampling, so faces are paired by place rather than by rank.
    const FaceDetection& want = (*direct)[i];
    const FaceDetection* got = nullptr;
    double best = 1e9;
    for (const FaceDetection& f : *found) {
      const double d = cv::norm(f.box.center() / 3 - want.box.center());
      if (d < best) best = d, got = &f;
    }
    // The copy is the photo resampled twice, so the faces agree to a few pixels of the photo.
    EXPECT_LT(best, 3) << "face " << i;
    EXPECT_NEAR(got->box.width() / 3, want.box.width(), 4) << "face " << i;
    EXPECT_NEAR((got->landmarks[2].x + 0.5) / 3 - 0.5, want.landmarks[2].x, 3) << "face " << i;
  }
}

}  // namespace
}  // namespace veriface
