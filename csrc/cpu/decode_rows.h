// Row-wise decode on the CPU, shared by dequantize and qmatmul.
#pragma once

#include <cstdint>

#include "../../kernels/formats.h"

namespace rocq::cpu {

// Decodes rows [r0, r1) of a weight in format C into out (row-major, (r1 - r0) x k floats).
// qweight is the whole [n, row_bytes] byte matrix; scales the [n, k/32] E8M0 plane or null.
template <class C>
void decode_rows(const uint8_t* qweight, const uint8_t* scales, int64_t r0, int64_t r1, int64_t k,
                 int64_t row_bytes, float* out) {
  const int64_t blocks = k / C::kElems;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = qweight + r * row_bytes;
    float* o = out + (r - r0) * k;
    if constexpr (C::kElems == 1) {
      int64_t e = 0;
      for (; e + 8 <= k; e += 8) C::decode8(row, 0, (int)(e / 8), o + e);
      for (; e < k; ++e) C::decode_block(row + e * C::kBytes, 0, o + e);
    } else {
      // Planar formats have one E8M0 scale per 32 elements: blocks of 32, one scale each.
      const uint8_t* sc = scales ? scales + r * (k / 32) : nullptr;
      for (int64_t b = 0; b < blocks; ++b) C::decode_block(row + b * C::kBytes, sc ? sc[b] : 0, o + b * C::kElems);
    }
  }
}

}  // namespace rocq::cpu
