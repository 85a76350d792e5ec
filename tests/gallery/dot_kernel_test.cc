// The Identify kernel against a double-precision reference, for sizes that hit every remainder path.

#include "core/gallery/dot_kernel.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace veriface {
namespace {

TEST(DotKernelTest, MatchesReferenceForAllShapes) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (int64_t dim : {1, 3, 7, 8, 9, 16, 31, 128, 129, 512}) {
    for (int64_t count : {1, 2, 3, 4, 5, 7, 8, 13}) {
      std::vector<float> rows(count * dim), query(dim), fast(count), portable(count);
      for (float& x : rows) x = uniform(rng);
      for (float& x : query) x = uniform(rng);
      DotRows(rows.data(), count, dim, query.data(), fast.data());
      DotRowsPortable(rows.data(), count, dim, query.data(), portable.data());
      for (int64_t i = 0; i < count; ++i) {
        double want = 0;
        for (int64_t j = 0; j < dim; ++j) want += static_cast<double>(rows[i * dim + j]) * query[j];
        EXPECT_NEAR(fast[i], want, 1e-4 * (1 + dim / 64.0)) << "dim " << dim << " count " << count << " row " << i;
        EXPECT_NEAR(portable[i], want, 1e-4 * (1 + dim / 64.0)) << "dim " << dim << " count " << count;
      }
    }
  }
}

}  // namespace
}  // namespace veriface
