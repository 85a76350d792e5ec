// Image decoding: good images in every colour layout come out as upright RGB; bad bytes come out as
// clear errors before anything large is allocated.

#include "core/image/decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common/file_util.h"
#include "core/image/image_header.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(ext, image, buffer));
  return {buffer.begin(), buffer.end()};
}

std::string LfwBytes() {
  auto bytes = ReadFileToString(testing::LfwDir() + "/Abel_Pacheco/Abel_Pacheco_0001.jpg");
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

// A 40 x 20 (w x h) BGR image whose left half is blue and right half red.
cv::Mat TwoColour() {
  cv::Mat bgr(20, 40, CV_8UC3, cv::Scalar(255, 0, 0));
  bgr(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(0, 0, 255));
  return bgr;
}

// Inserts an EXIF APP1 segment with the given orientation right after the JPEG's SOI marker.
std::string WithExifOrientation(const std::string& jpeg, uint16_t orientation) {
  std::string tiff("II*\0\x08\0\0\0", 8);                      // little-endian TIFF, IFD at offset 8
  tiff += std::string("\x01\x00", 2);                          // one entry
  tiff += std::string("\x12\x01\x03\x00\x01\x00\x00\x00", 8);  // tag 0x0112 (orientation), SHORT, count 1
  tiff += static_cast<char>(orientation & 0xFF);
  tiff += static_cast<char>(orientation >> 8);
  tiff += std::string("\0\0", 2);      // value padding
  tiff += std::string("\0\0\0\0", 4);  // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t length = payload.size() + 2;
  std::string segment("\xFF\xE1", 2);
  segment += static_cast<char>(length >> 8);
  segment += static_cast<char>(length & 0xFF);
  segment += payload;
  return jpeg.substr(0, 2) + segment + jpeg.substr(2);
}

TEST(DecodeImageTest, LfwJpegIsRgb) {
  const auto rgb = DecodeImage(LfwBytes());
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->size(), cv::Size(250, 250));
  EXPECT_EQ(rgb->type(), CV_8UC3);
  const cv::Mat bgr = cv::imread(testing::LfwDir() + "/Abel_Pacheco/Abel_Pacheco_0001.jpg", cv::IMREAD_COLOR);
  EXPECT_EQ(rgb->at<cv::Vec3b>(100, 100)[0], bgr.at<cv::Vec3b>(100, 100)[2]);  // R came from the last channel
}

TEST(DecodeImageTest, ChannelOrderIsRgb) {
  const auto rgb = DecodeImage(Encode(TwoColour(), ".png"));
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->at<cv::Vec3b>(10, 5), cv::Vec3b(0, 0, 255));   // blue
  EXPECT_EQ(rgb->at<cv::Vec3b>(10, 35), cv::Vec3b(255, 0, 0));  // red
}

TEST(DecodeImageTest, GrayscaleRgbaAnd16BitBecomeRgb) {
  cv::Mat gray(30, 30, CV_8UC1, cv::Scalar(77));
  for (const std::string ext : {".jpg", ".png", ".pgm", ".bmp"}) {
    SCOPED_TRACE(ext);
    const auto rgb = DecodeImage(Encode(gray, ext));
    ASSERT_TRUE(rgb.ok()) << rgb.status();
    EXPECT_EQ(rgb->type(), CV_8UC3);
    EXPECT_NEAR(rgb->at<cv::Vec3b>(15, 15)[1], 77, 2);
  }
  cv::Mat bgra(30, 30, CV_8UC4, cv::Scalar(10, 20, 30, 128));
  const auto from_rgba = DecodeImage(Encode(bgra, ".png"));
  ASSERT_TRUE(from_rgba.ok()) << from_rgba.status();
  EXPECT_EQ(from_rgba->at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));
  cv::Mat deep(30, 30, CV_16UC3, cv::Scalar(65535, 0, 0));
  const auto from_16 = DecodeImage(Encode(deep, ".png"));
  ASSERT_TRUE(from_16.ok()) << from_16.status();
  EXPECT_EQ(from_16->type(), CV_8UC3);
  EXPECT_EQ(from_16->at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));
}

TEST(DecodeImageTest, ExifOrientationIsApplied) {
  const std::string jpeg = Encode(TwoColour(), ".jpg");
  // 6: the stored image must be turned 90 degrees clockwise to be upright.
  const auto rotated = DecodeImage(WithExifOrientation(jpeg, 6));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_EQ(rotated->size(), cv::Size(20, 40));
  // The blue (left) half ends up on top after a clockwise turn.
  EXPECT_GT(rotated->at<cv::Vec3b>(5, 10)[2], 200);
  EXPECT_GT(rotated->at<cv::Vec3b>(35, 10)[0], 200);
  const auto upright = DecodeImage(WithExifOrientation(jpeg, 1));
  ASSERT_TRUE(upright.ok());
  EXPECT_EQ(upright->size(), cv::Size(40, 20));
}

TEST(DecodeImageTest, BadBytesGiveClearErrors) {
  const std::string jpeg = LfwBytes();
  const std::string png = Encode(TwoColour(), ".png");
  struct Case {
    std::string name;
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases{
      {"empty", "", "empty image"},
      {"text", "hello, I am not an image at all", "not an image"},
      {"truncated jpeg", jpeg.substr(0, jpeg.size() / 2), "truncated"},
      {"jpeg header only", jpeg.substr(0, 20), "truncated"},
      {"truncated png", png.substr(0, png.size() - 20), "cannot decode png"},
      {"png signature only", png.substr(0, 10), "truncated"},
      {"corrupt jpeg body", jpeg.substr(0, 700) + std::string(jpeg.size() - 700, '\x00'), "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto result = DecodeImage(c.bytes);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.message));
  }
}

TEST(DecodeImageTest, HugePixelCountIsRefusedFromTheHeader) {
  // A valid PNG signature and IHDR claiming 20000 x 20000 pixels, and nothing else: it must be refused
  // from the header alone, without trying to allocate 1.2 GB.
  std::string png = Encode(TwoColour(), ".png");
  auto put32 = [&png](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + static_cast<size_t>(i)] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  put32(16, 20000);
  put32(20, 20000);
  const auto result = DecodeImage(png);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("20000x20000"));

  // Found by fuzz/image_fuzzer: sides near 2^32 made width * height overflow int64 and pass the limit.
  put32(16, 0xDBDBDBDB);
  put32(20, 0xDBDBDBDB);
  const auto huge = DecodeImage(png);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
}

TEST(ImageHeaderTest, PixelCountSaturates) {
  EXPECT_EQ((ImageHeader{"png", 3, 4}).pixels(), 12);
  EXPECT_EQ((ImageHeader{"png", 0, 4}).pixels(), 0);
  EXPECT_EQ((ImageHeader{"png", 4294967295, 4294967295}).pixels(), std::numeric_limits<int64_t>::max());
}

TEST(DecodeImageTest, ByteAndSideLimits) {
  DecodeLimits limits;
  limits.max_bytes = 1000;
  const auto big = DecodeImage(LfwBytes(), limits);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  const auto tiny = DecodeImage(Encode(cv::Mat(5, 5, CV_8UC3, cv::Scalar(1, 2, 3)), ".png"));
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(std::string(tiny.status().message()), HasSubstr("at least"));
}

TEST(ImageHeaderTest, ReadsSizesOfEveryFormat) {
  const cv::Mat image(17, 33, CV_8UC3, cv::Scalar(1, 2, 3));
  for (const std::string ext : {".jpg", ".png", ".bmp", ".ppm", ".webp"}) {
    SCOPED_TRACE(ext);
    const auto header = ReadImageHeader(Encode(image, ext));
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->width, 33);
    EXPECT_EQ(header->height, 17);
  }
}

TEST(LoadImageFileTest, MissingFileNamesThePath) {
  const auto result = LoadImageFile("/nonexistent/face.jpg");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("/nonexistent/face.jpg"));
}

}  // namespace
}  // namespace veriface
