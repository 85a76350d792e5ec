#pragma once
// The inner loop of Identify: one query against a block of contiguous rows.

#include <cstdint>

namespace veriface {

// out[i] = dot(rows + i * dim, query) for i in [0, count). Uses AVX2/FMA when the CPU has them (chosen
// once, at run time, so one binary runs everywhere) and a portable loop otherwise.
void DotRows(const float* rows, int64_t count, int64_t dim, const float* query, float* out);

// The portable loop, exposed so tests can check the vector path against it.
void DotRowsPortable(const float* rows, int64_t count, int64_t dim, const float* query, float* out);

// The same over int8 codes, exactly (int32 sums): the compressed scan's loop. AVX2 when the CPU has it.
void DotRowsInt8(const int8_t* rows, int64_t count, int64_t dim, const int8_t* query, int32_t* out);
void DotRowsInt8Portable(const int8_t* rows, int64_t count, int64_t dim, const int8_t* query, int32_t* out);

}  // namespace veriface
