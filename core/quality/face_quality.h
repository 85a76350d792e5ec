#pragma once
// How usable a detected face is for recognition, from the image and the detector's five landmarks alone:
// its size, sharpness, pose, exposure and the detector's confidence, each rated high, medium or low, and
// an overall level (the worst of them) with the reasons that pulled it down.
//

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/detect/face.h"
#include "core/quality/quality_policy.h"

namespace veriface {

// Why a face is rated below kHigh (named as Rekognition names its quality filters).
enum class QualityReason {
  kSmallFace,         // few pixels between the eyes
  kLowSharpness,      // blurred or out of focus (or a small face upscaled into the chip)
  kExtremePose,       // turned, tilted or rolled far from frontal
  kLowBrightness,     // underexposed
  kHighBrightness,    // overexposed
  kLowDetectorScore,  // the detector is unsure it is a face at all
};

// The raw measurements, in the units a person can check.
struct QualityMeasures {
  double interocular_px = 0;  // distance between the two eye landmarks, in image pixels
  // Laplacian energy relative to contrast on the aligned chip's central face region, at a quarter of the
  // chip's resolution (features a few chip pixels wide): the standard deviation of the Laplacian of the grey
  // levels over their own standard deviation. Dividing by the contrast keeps a darker (or lower-contrast)
  // photo of a sharp face from reading as blurred. About 1.25 for an LFW portrait (0.85 to 1.7 for nine in
  // ten), 0.3 after a Gaussian blur of 5 px.
  double sharpness = 0;
  // Head pose in degrees estimated from the five landmarks with a mean face's proportions: coarse (a few
  // degrees near frontal, worse far from it) but enough to tell a profile from a portrait.
  double yaw_deg = 0;         // positive: the nose points to the image's right
  double pitch_deg = 0;       // positive: the face tilts up
  double roll_deg = 0;        // positive: the eye line slopes down to the image's right
  double brightness = 0;      // mean grey level (0..255) of the aligned chip's central face region
  double detector_score = 0;  // 0..1
};

struct QualityIssue {
  QualityReason reason = QualityReason::kSmallFace;
  QualityLevel level = QualityLevel::kMedium;  // kMedium or kLow
};

struct FaceQuality {
  QualityMeasures measures;
  QualityLevel level = QualityLevel::kHigh;  // the worst of the measures' levels
  std::vector<QualityIssue> issues;          // every measure below kHigh, worst first
};

// The measurements of one detected face in its RGB (CV_8UC3) image.
QualityMeasures MeasureFace(const cv::Mat& rgb, const FaceDetection& face);

// The measurements rated by `policy`.
FaceQuality RateFace(const QualityMeasures& measures, const QualityPolicy& policy);

inline FaceQuality AssessFace(const cv::Mat& rgb, const FaceDetection& face, const QualityPolicy& policy) {
  return RateFace(MeasureFace(rgb, face), policy);
}

// "LOW", "MEDIUM", "HIGH" ("UNSPECIFIED" for kUnspecified).
const char* QualityLevelName(QualityLevel level);
// "SMALL_FACE", "LOW_SHARPNESS", ...
const char* QualityReasonName(QualityReason reason);
// The level a configuration or command line names, case-insensitively ("low", "medium", "high");
// kUnspecified for anything else.
QualityLevel ParseQualityLevel(const std::string& name);

// The issues at `level` or worse, each with its measurement and bound, for a message to a person:
// "LOW_SHARPNESS (sharpness 0.21, low below 0.38); SMALL_FACE (14 px between the eyes, low below 16)".
std::string DescribeIssues(const FaceQuality& quality, const QualityPolicy& policy, QualityLevel level);

}  // namespace veriface
