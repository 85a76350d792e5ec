#pragma once
// MTCNN's three stages on one image, each timed: Detect split so that a benchmark can say where the time
// goes. Header-only, so that bench/device/build_and_run.sh can build cuda_check from sources alone.

#include <chrono>
#include <cstddef>
#include <opencv2/core.hpp>

#include "core/detect/mtcnn.h"

namespace veriface {

struct MtcnnStageTimes {
  double pnet_ms = 0, rnet_ms = 0, onet_ms = 0;
  size_t faces = 0;
};

inline MtcnnStageTimes DetectStageByStage(const MtcnnDetector& detector, const cv::Mat& rgb,
                                          const DetectorOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  MtcnnStageTimes t;
  const auto t0 = Clock::now();
  const auto c1 = detector.Stage1(rgb, options);
  const auto t1 = Clock::now();
  const auto c2 = detector.Stage2(rgb, c1, options);
  const auto t2 = Clock::now();
  t.faces = detector.Stage3(rgb, c2, options).size();
  const auto t3 = Clock::now();
  t.pnet_ms = ms(t0, t1);
  t.rnet_ms = ms(t1, t2);
  t.onet_ms = ms(t2, t3);
  return t;
}

}  // namespace veriface
