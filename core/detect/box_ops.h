#pragma once
// Box arithmetic of the MTCNN cascade, in face-api's internal convention: [l, t, r, b] with
// integer-valued doubles, covering the 0-based pixels l-1 .. r-1 and t-1 .. b-1. Calibration and
// overlap use w = r - l (no +1); patch extraction and landmarks use r - l + 1. Keeping these exact is
// what makes the C++ boxes equal to the reference's, pixel for pixel.

#include <array>
#include <vector>

namespace veriface {
namespace mtcnn {

using Box = std::array<double, 4>;        // l, t, r, b
using Regression = std::array<float, 4>;  // dl, dt, dr, db, in units of the box size

enum class Overlap { kUnion, kMinimum };

// Overlap of two boxes; areas are w*h without +1. kMinimum: intersection / min(area).
double BoxOverlap(const Box& a, const Box& b, Overlap kind);

// Greedy non-maximum suppression: repeatedly keep the highest score (equal scores: the later index)
// and drop the boxes that overlap it by more than `threshold`. Returns kept indices, best first.
std::vector<int> NonMaxSuppression(const std::vector<Box>& boxes, const std::vector<float>& scores, double threshold,
                                   Overlap kind);

// JavaScript's Math.round: halves go up.
double JsRound(double v);

// Grows the shorter side symmetrically into a square, then rounds x, y, w, h.
Box ToSquareRounded(const Box& b);

// Applies the regression scaled by the box size, then squares and rounds.
Box Calibrate(const Box& b, const Regression& reg);

}  // namespace mtcnn
}  // namespace veriface
