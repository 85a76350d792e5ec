#pragma once
// The compressed scans' codes: a unit vector as symmetric 8-bit integers scaled to its own largest
// coordinate, and the fp32 re-scoring that makes their candidates' order exact. Shared by Int8FlatIndex
// (one code per slot) and IvfInt8Index (codes grouped by inverted list).

#include <cstdint>
#include <vector>

#include "core/gallery/flat_index.h"
#include "core/gallery/gallery_index.h"

namespace veriface {

// Writes dim codes for `v` and returns their scale (v[j] ~ code[j] * scale); 1 for the zero vector.
// The error is at most half a step, a fraction of a percent of the largest coordinate, whatever the
// vector's spread.
float EncodeInt8(const float* v, int64_t dim, int8_t* code);

// `candidates` (labels are slots of `rows`) re-scored exactly in fp32 against `query`; the best k,
// best first. The top-1 of a compressed scan is then exact among its candidates.
std::vector<IndexHit> RescoreInFp32(const SlotRows& rows, const float* query, const std::vector<IndexHit>& candidates,
                                    int64_t k);

}  // namespace veriface
