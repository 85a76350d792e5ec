#include "core/quality/face_quality.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/align/aligner.h"

namespace veriface {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kChipSize = 150;
// The central square of the chip that holds the face itself (eyes to chin): the template puts the eyes at
// about (47, 47) and (98, 47) and the mouth at y 103 in a 150 chip, so [35, 115) leaves out the hair,
// the background and the black border a warp past the image's edge leaves.
constexpr int kFaceRegionBegin = 35;
constexpr int kFaceRegionEnd = 115;
constexpr int kSharpnessShrink = 4;

// Mean-face depth of the nose tip in front of the eyes, over half the distance between them. A turn of
// the head by `yaw` moves the nose tip sideways by depth * sin(yaw) while the eyes' half-distance shrinks to
// half * cos(yaw), so the measured offset over the half-distance is this ratio times tan(yaw). About
// 25 mm over 31 mm in adult anthropometry.
constexpr double kNoseDepthOverHalfEyes = 0.8;

double Degrees(double radians) { return radians * 180.0 / kPi; }

// The frontal proportions of the landmarks: where the nose tip lies between the eye line and the mouth
// line (0 at the eyes, 1 at the mouth) and the eye-to-mouth height over the half eye distance, both from
// the alignment template (a mean frontal face).
struct FrontalProportions {
  double nose_height = 0;
  double mouth_over_half_eyes = 0;
};

FrontalProportions Frontal() {
  const std::vector<cv::Point2d> t = FaceTemplate(kChipSize);
  const double eye_y = (t[0].y + t[1].y) / 2;
  const double mouth_y = (t[3].y + t[4].y) / 2;
  const double half_eyes = (t[1].x - t[0].x) / 2;
  return {(t[2].y - eye_y) / (mouth_y - eye_y), (mouth_y - eye_y) / half_eyes};
}

struct Pose {
  double yaw = 0, pitch = 0, roll = 0;
};

Pose EstimatePose(const Landmarks5& p) {
  static const FrontalProportions frontal = Frontal();
  const cv::Point2d eye_mid = (p[0] + p[1]) * 0.5;
  const cv::Point2d eye_axis = p[1] - p[0];
  const double eye_distance = std::hypot(eye_axis.x, eye_axis.y);
  Pose pose;
  if (eye_distance < 1e-6) return pose;
  pose.roll = Degrees(std::atan2(eye_axis.y, eye_axis.x));
  // Into the face's own frame: x along the eye line, y down from it (roll undone).
  const cv::Point2d ux = eye_axis / eye_distance;
  const cv::Point2d uy(-ux.y, ux.x);
  const auto local = [&](const cv::Point2d& q) {
    const cv::Point2d d = q - eye_mid;
    return cv::Point2d(d.dot(ux), d.dot(uy));
  };
  const cv::Point2d nose = local(p[2]);
  const cv::Point2d mouth = (local(p[3]) + local(p[4])) * 0.5;
  const double half_eyes = eye_distance / 2;
  pose.yaw = Degrees(std::atan(nose.x / half_eyes / kNoseDepthOverHalfEyes));
  // Tilting the head up by `pitch` raises the nose tip by depth * sin(pitch) against a face height shrunk by
  // cos(pitch): its relative height drops by depth / height * tan(pitch). Roll and yaw change neither.
  if (mouth.y > 1e-6) {
    const double nose_height = nose.y / mouth.y;
    const double depth_over_height = kNoseDepthOverHalfEyes / frontal.mouth_over_half_eyes;
    pose.pitch = Degrees(std::atan((frontal.nose_height - nose_height) / depth_over_height));
  }
  return pose;
}

// Rates a measure where larger is better.
QualityLevel AtLeast(double value, double medium, double low) {
  if (value >= medium) return QualityLevel::kHigh;
  return value >= low ? QualityLevel::kMedium : QualityLevel::kLow;
}

// Rates a measure where smaller is better.
QualityLevel AtMost(double value, double medium, double low) {
  if (value <= medium) return QualityLevel::kHigh;
  return value <= low ? QualityLevel::kMedium : QualityLevel::kLow;
}

double PoseAngle(const QualityMeasures& m) { return std::max(std::abs(m.yaw_deg), std::abs(m.pitch_deg)); }

}  // namespace

QualityMeasures MeasureFace(const cv::Mat& rgb, const FaceDetection& face) {
  QualityMeasures m;
  m.detector_score = face.score;
  const cv::Point2d eyes = face.landmarks[1] - face.landmarks[0];
  m.interocular_px = std::hypot(eyes.x, eyes.y);
  const Pose pose = EstimatePose(face.landmarks);
  m.yaw_deg = pose.yaw;
  m.pitch_deg = pose.pitch;
  m.roll_deg = pose.roll;

  const AlignedChip aligned = AlignFace(rgb, face.landmarks, kChipSize);
  cv::Mat grey;
  cv::cvtColor(aligned.chip, grey, cv::COLOR_RGB2GRAY);
  const cv::Rect region(kFaceRegionBegin, kFaceRegionBegin, kFaceRegionEnd - kFaceRegionBegin,
                        kFaceRegionEnd - kFaceRegionBegin);
  cv::Scalar mean, stddev;
  cv::meanStdDev(grey(region), mean, stddev);
  m.brightness = mean[0];
  // Detail at the scale the recogniser depends on: the chip reduced kSharpnessShrink times, so that the
  // Laplacian sees features a few chip pixels wide. At full resolution it sees only the finest pixels,
  // which an upscaled face (most photos put fewer than 150 pixels across a face) never has, and it could
  // not tell a slightly soft photo from a badly blurred one.
  cv::Mat coarse;
  cv::resize(grey, coarse, cv::Size(kChipSize / kSharpnessShrink, kChipSize / kSharpnessShrink), 0, 0, cv::INTER_AREA);
  cv::Mat laplacian;
  cv::Laplacian(coarse, laplacian, CV_64F);
  const int begin = kFaceRegionBegin / kSharpnessShrink, end = kFaceRegionEnd / kSharpnessShrink;
  const cv::Rect coarse_region(begin, begin, end - begin, end - begin);
  cv::Scalar coarse_mean, coarse_stddev, lap_mean, lap_stddev;
  cv::meanStdDev(coarse(coarse_region), coarse_mean, coarse_stddev);
  cv::meanStdDev(laplacian(coarse_region), lap_mean, lap_stddev);
  // A flat patch (all one grey) has neither contrast nor detail: call it unsharp rather than divide by 0.
  m.sharpness = coarse_stddev[0] < 1.0 ? 0.0 : lap_stddev[0] / coarse_stddev[0];
  return m;
}

FaceQuality RateFace(const QualityMeasures& measures, const QualityPolicy& policy) {
  FaceQuality q;
  q.measures = measures;
  const auto rate = [&](QualityReason reason, QualityLevel level) {
    if (level == QualityLevel::kHigh) return;
    q.issues.push_back(QualityIssue{reason, level});
    q.level = std::min(q.level, level);
  };
  rate(QualityReason::kSmallFace,
       AtLeast(measures.interocular_px, policy.interocular_medium_px, policy.interocular_low_px));
  rate(QualityReason::kLowSharpness, AtLeast(measures.sharpness, policy.sharpness_medium, policy.sharpness_low));
  rate(QualityReason::kExtremePose, AtMost(PoseAngle(measures), policy.pose_medium_deg, policy.pose_low_deg));
  rate(QualityReason::kLowBrightness, AtLeast(measures.brightness, policy.dark_medium, policy.dark_low));
  rate(QualityReason::kHighBrightness, AtMost(measures.brightness, policy.bright_medium, policy.bright_low));
  rate(QualityReason::kLowDetectorScore, AtLeast(measures.detector_score, policy.score_medium, policy.score_low));
  std::stable_sort(q.issues.begin(), q.issues.end(),
                   [](const QualityIssue& a, const QualityIssue& b) { return a.level < b.level; });
  return q;
}

const char* QualityLevelName(QualityLevel level) {
  switch (level) {
    case QualityLevel::kLow:
      return "LOW";
    case QualityLevel::kMedium:
      return "MEDIUM";
    case QualityLevel::kHigh:
      return "HIGH";
    case QualityLevel::kUnspecified:
      break;
  }
  return "UNSPECIFIED";
}

const char* QualityReasonName(QualityReason reason) {
  switch (reason) {
    case QualityReason::kSmallFace:
      return "SMALL_FACE";
    case QualityReason::kLowSharpness:
      return "LOW_SHARPNESS";
    case QualityReason::kExtremePose:
      return "EXTREME_POSE";
    case QualityReason::kLowBrightness:
      return "LOW_BRIGHTNESS";
    case QualityReason::kHighBrightness:
      return "HIGH_BRIGHTNESS";
    case QualityReason::kLowDetectorScore:
      return "LOW_DETECTOR_SCORE";
  }
  return "UNKNOWN";
}

QualityLevel ParseQualityLevel(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "low") return QualityLevel::kLow;
  if (lower == "medium") return QualityLevel::kMedium;
  if (lower == "high") return QualityLevel::kHigh;
  return QualityLevel::kUnspecified;
}

std::string DescribeIssues(const FaceQuality& quality, const QualityPolicy& policy, QualityLevel level) {
  std::vector<std::string> parts;
  const QualityMeasures& m = quality.measures;
  for (const QualityIssue& issue : quality.issues) {
    if (issue.level > level) continue;
    const bool low = issue.level == QualityLevel::kLow;
    const char* bound = low ? "low" : "medium";
    std::string detail;
    switch (issue.reason) {
      case QualityReason::kSmallFace:
        detail = absl::StrFormat("%.0f px between the eyes, %s below %g", m.interocular_px, bound,
                                 low ? policy.interocular_low_px : policy.interocular_medium_px);
        break;
      case QualityReason::kLowSharpness:
        detail = absl::StrFormat("sharpness %.2f, %s below %g", m.sharpness, bound,
                                 low ? policy.sharpness_low : policy.sharpness_medium);
        break;
      case QualityReason::kExtremePose:
        detail = absl::StrFormat("yaw %.0f, pitch %.0f degrees, %s beyond %g", m.yaw_deg, m.pitch_deg, bound,
                                 low ? policy.pose_low_deg : policy.pose_medium_deg);
        break;
      case QualityReason::kLowBrightness:
        detail = absl::StrFormat("brightness %.0f of 255, %s below %g", m.brightness, bound,
                                 low ? policy.dark_low : policy.dark_medium);
        break;
      case QualityReason::kHighBrightness:
        detail = absl::StrFormat("brightness %.0f of 255, %s above %g", m.brightness, bound,
                                 low ? policy.bright_low : policy.bright_medium);
        break;
      case QualityReason::kLowDetectorScore:
        detail = absl::StrFormat("detector score %.3f, %s below %g", m.detector_score, bound,
                                 low ? policy.score_low : policy.score_medium);
        break;
    }
    parts.push_back(absl::StrCat(QualityReasonName(issue.reason), " (", detail, ")"));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace veriface
