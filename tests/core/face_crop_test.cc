// The face crop a template keeps for re-embedding (core/align/face_crop.h): on real LFW faces, embedding
// the opened crop gives what embedding the whole photo gives (the crop is all the model needs), also when
// the face is near the image's edge or large enough to be scaled down; damaged crops are refused.

#include "core/align/face_crop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/model/crop_embedding.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

class FaceCropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::DefaultModel();
    ASSERT_NE(model_, nullptr);
  }

  static cv::Mat Lfw(const std::string& person) {
    const cv::Mat bgr = cv::imread(testing::LfwDir() + "/" + person + "/" + person + "_0001.jpg");
    EXPECT_FALSE(bgr.empty()) << person << " not found under " << testing::LfwDir();
    cv::Mat rgb;
    if (!bgr.empty()) cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    return rgb;
  }

  FaceDetection Central(const cv::Mat& rgb) const {
    auto faces = model_->Detect(rgb, model_->spec().detector_defaults);
    EXPECT_TRUE(faces.ok() && !faces->empty()) << "no face found";
    if (!faces.ok() || faces->empty()) return {};
    return (*faces)[static_cast<size_t>(SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows))];
  }

  // Cosine similarity between the photo's embedding of `face` and its crop's.
  double CropAgreement(const cv::Mat& rgb, const FaceDetection& face, FaceCrop* crop_out = nullptr) const {
    const FaceCrop crop = CutFaceCrop(rgb, face);
    if (crop_out != nullptr) *crop_out = crop;
    auto direct = model_->Embed({model_->Cut(rgb, face)});
    auto from_crop = EmbedFaceCrops(*model_, {crop});
    EXPECT_TRUE(direct.ok()) << direct.status();
    EXPECT_TRUE(from_crop.ok()) << from_crop.status();
    if (!direct.ok() || !from_crop.ok()) return 0;
    const float* a = direct->data_ptr<float>();
    double dot = 0;
    for (size_t i = 0; i < from_crop->front().size(); ++i) dot += a[i] * from_crop->front()[i];
    return dot;
  }

  std::shared_ptr<const FaceModel> model_;
};

TEST_F(FaceCropTest, EmbeddingTheCropGivesWhatEmbeddingThePhotoGives) {
  for (const char* person : {"George_W_Bush", "Serena_Williams", "Colin_Powell", "Gloria_Macapagal_Arroyo"}) {
    const cv::Mat rgb = Lfw(person);
    ASSERT_FALSE(rgb.empty());
    const FaceDetection face = Central(rgb);
    FaceCrop crop;
    const double agreement = CropAgreement(rgb, face, &crop);
    EXPECT_GT(agreement, 0.98) << person;
    // LFW's faces are small enough to be kept at full resolution: the points are the face's, moved.
    auto opened = OpenFaceCrop(crop);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->rgb.cols, opened->rgb.rows);
    EXPECT_LE(opened->rgb.cols, FaceCropOptions().max_side);
    const cv::Point2d shift = face.landmarks[0] - opened->face.landmarks[0];
    for (size_t i = 1; i < face.landmarks.size(); ++i) {
      EXPECT_NEAR(face.landmarks[i].x - opened->face.landmarks[i].x, shift.x, 1e-3) << person;
      EXPECT_NEAR(face.landmarks[i].y - opened->face.landmarks[i].y, shift.y, 1e-3) << person;
    }
    EXPECT_FLOAT_EQ(opened->face.score, face.score);
  }
}

TEST_F(FaceCropTest, AFaceAtTheEdgeOrLargeEnoughToBeScaledDownStillAgrees) {
  const cv::Mat rgb = Lfw("Tony_Blair");
  ASSERT_FALSE(rgb.empty());
  const FaceDetection face = Central(rgb);
  // The photo cut just past the face's top-left: the crop's square reaches outside it (black there, as
  // alignment fills outside an image).
  const cv::Rect kept(static_cast<int>(face.box.x1) - 4, static_cast<int>(face.box.y1) - 4,
                      rgb.cols - static_cast<int>(face.box.x1) + 4, rgb.rows - static_cast<int>(face.box.y1) + 4);
  const cv::Mat edge = rgb(kept).clone();
  EXPECT_GT(CropAgreement(edge, Central(edge)), 0.98);
  // Four times larger: the square (about 2.4 face widths) is reduced to max_side.
  cv::Mat large;
  cv::resize(rgb, large, cv::Size(), 4.0, 4.0, cv::INTER_CUBIC);
  FaceCrop crop;
  EXPECT_GT(CropAgreement(large, Central(large), &crop), 0.98);
  auto opened = OpenFaceCrop(crop);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->rgb.cols, FaceCropOptions().max_side);
}

TEST(FaceCropOpenTest, DamagedCropsAreRefusedWithAReason) {
  EXPECT_EQ(OpenFaceCrop(FaceCrop{}).status().code(), absl::StatusCode::kFailedPrecondition);
  FaceCrop garbage;
  garbage.jpeg = "not a jpeg at all";
  EXPECT_EQ(OpenFaceCrop(garbage).status().code(), absl::StatusCode::kDataLoss);
  const cv::Mat grey(64, 64, CV_8UC3, cv::Scalar::all(128));
  FaceDetection face;
  face.box = FaceBox{16, 16, 48, 48};
  FaceCrop crop = CutFaceCrop(grey, face);
  ASSERT_TRUE(OpenFaceCrop(crop).ok());
  crop.points[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(OpenFaceCrop(crop).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace veriface
