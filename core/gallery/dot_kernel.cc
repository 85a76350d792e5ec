#include "core/gallery/dot_kernel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VF_HAVE_AVX2_PATH 1
#endif

namespace veriface {

void DotRowsPortable(const float* rows, int64_t count, int64_t dim, const float* query, float* out) {
  // Eight independent partial sums: the compiler may not reorder a float reduction on its own, and
  // one long dependency chain would make this latency-bound instead of bandwidth-bound.
  for (int64_t i = 0; i < count; ++i) {
    const float* row = rows + i * dim;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= dim; j += 8) {
      for (int l = 0; l < 8; ++l) acc[l] += row[j + l] * query[j + l];
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < dim; ++j) sum += row[j] * query[j];
    out[i] = sum;
  }
}

#ifdef VF_HAVE_AVX2_PATH
namespace {

__attribute__((target("avx2,fma"))) inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// Four rows at a time share each load of the query, and give four independent FMA chains.
__attribute__((target("avx2,fma"))) void DotRowsAvx2(const float* rows, int64_t count, int64_t dim, const float* query,
                                                     float* out) {
  const int64_t vec_dim = dim - dim % 8;
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const float* r0 = rows + i * dim;
    const float* r1 = r0 + dim;
    const float* r2 = r1 + dim;
    const float* r3 = r2 + dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t j = 0; j < vec_dim; j += 8) {
      const __m256 q = _mm256_loadu_ps(query + j);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + j), q, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + j), q, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + j), q, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + j), q, a3);
    }
    float s0 = HorizontalSum(a0), s1 = HorizontalSum(a1), s2 = HorizontalSum(a2), s3 = HorizontalSum(a3);
    for (int64_t j = vec_dim; j < dim; ++j) {
      s0 += r0[j] * query[j];
      s1 += r1[j] * query[j];
      s2 += r2[j] * query[j];
      s3 += r3[j] * query[j];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  for (; i < count; ++i) {
    const float* r = rows + i * dim;
    __m256 a = _mm256_setzero_ps();
    for (int64_t j = 0; j < vec_dim; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(query + j), a);
    float s = HorizontalSum(a);
    for (int64_t j = vec_dim; j < dim; ++j) s += r[j] * query[j];
    out[i] = s;
  }
}

__attribute__((target("avx2"))) inline int32_t HorizontalSumInt32(__m256i v) {
  __m128i lo = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4e));
  lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0xb1));
  return _mm_cvtsi128_si32(lo);
}

// Two rows at a time: each 16-byte slice of a row is widened to 16 int16 lanes and multiplied pairwise
// into 8 int32 lanes (vpmaddwd), so a 128-D row is 8 multiply-adds; the sums are exact.
__attribute__((target("avx2"))) void DotRowsInt8Avx2(const int8_t* rows, int64_t count, int64_t dim,
                                                     const int8_t* query, int32_t* out) {
  const int64_t vec_dim = dim - dim % 16;
  int64_t i = 0;
  for (; i + 2 <= count; i += 2) {
    const int8_t* r0 = rows + i * dim;
    const int8_t* r1 = r0 + dim;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (int64_t j = 0; j < vec_dim; j += 16) {
      const __m256i q = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(query + j)));
      a0 = _mm256_add_epi32(
          a0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + j))), q));
      a1 = _mm256_add_epi32(
          a1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + j))), q));
    }
    int32_t s0 = HorizontalSumInt32(a0), s1 = HorizontalSumInt32(a1);
    for (int64_t j = vec_dim; j < dim; ++j) {
      s0 += r0[j] * query[j];
      s1 += r1[j] * query[j];
    }
    out[i] = s0;
    out[i + 1] = s1;
  }
  if (i < count) DotRowsInt8Portable(rows + i * dim, count - i, dim, query, out + i);
}

bool CpuHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace
#endif

void DotRows(const float* rows, int64_t count, int64_t dim, const float* query, float* out) {
#ifdef VF_HAVE_AVX2_PATH
  if (CpuHasAvx2Fma()) {
    DotRowsAvx2(rows, count, dim, query, out);
    return;
  }
#endif
  DotRowsPortable(rows, count, dim, query, out);
}

void DotRowsInt8Portable(const int8_t* rows, int64_t count, int64_t dim, const int8_t* query, int32_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    const int8_t* row = rows + i * dim;
    int32_t sum = 0;
    for (int64_t j = 0; j < dim; ++j) sum += static_cast<int32_t>(row[j]) * query[j];
    out[i] = sum;
  }
}

void DotRowsInt8(const int8_t* rows, int64_t count, int64_t dim, const int8_t* query, int32_t* out) {
#ifdef VF_HAVE_AVX2_PATH
  if (CpuHasAvx2Fma()) {
    DotRowsInt8Avx2(rows, count, dim, query, out);
    return;
  }
#endif
  DotRowsInt8Portable(rows, count, dim, query, out);
}

}  // namespace veriface
