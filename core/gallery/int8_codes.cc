#include "core/gallery/int8_codes.h"

#include <algorithm>
#include <cmath>

#include "core/gallery/dot_kernel.h"
#include "core/gallery/top_keeper.h"

namespace veriface {

float EncodeInt8(const float* v, int64_t dim, int8_t* code) {
  float max_abs = 0;
  for (int64_t j = 0; j < dim; ++j) max_abs = std::max(max_abs, std::abs(v[j]));
  const float scale = max_abs > 0 ? max_abs / 127.0F : 1.0F;
  for (int64_t j = 0; j < dim; ++j) code[j] = static_cast<int8_t>(std::lround(v[j] / scale));
  return scale;
}

std::vector<IndexHit> RescoreInFp32(const SlotRows& rows, const float* query, const std::vector<IndexHit>& candidates,
                                    int64_t k) {
  TopKeeper best(k);
  for (const IndexHit& c : candidates) {
    float score = 0;
    DotRows(rows.row(c.label), 1, rows.dim, query, &score);
    best.Offer(c.label, score);
  }
  return best.Take();
}

}  // namespace veriface
