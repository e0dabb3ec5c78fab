// CPU quantizer for rocq's planar OCP MX formats (ocp_mxfp4 .. ocp_mxint8, ids 100..105):
// fp32 rows -> element plane (layout of kernels/formats_mx.h) + E8M0 scale plane [n, k/32].
// Torch-free; thread-safe (no static mutable state); the caller parallelises over rows.
//
// Scale modes (one E8M0 exponent per 32 consecutive elements of a row):
//   kMxScaleSpec (0, the default; OCP MX v1.0 section 6.3, torchao's FLOOR):
//       shared = floor(log2(amax)) - emax_elem, clamped to [-127, 127]; an all-zero block
//       gets shared = -127 (E8M0 byte 0: floor(log2(0)) = -inf, clamped).
//   kMxScaleEven (1, AMD Quark's default "even"): amax is first rounded to the element's
//       mantissa width (Quark's widths: E2M1 1, E2M3 3, E3M2 2, E4M3 3, E5M2 2, INT8 8) by
//       adding half a unit in the last place to its fp32 bit pattern (ties away from zero;
//       a carry moves it to the next power of two), then shared = floor(log2(that)) - emax,
//       clamped to [-127, 127]; an all-zero block uses amax = 2^-126 as Quark does
//       (shared = max(-126 - emax, -127)). This avoids clipping blocks whose amax lies just
//       below the next power of two (E2M1: 7 * 2^s would saturate to 6 * 2^s under the spec rule).
//       Elements that round to zero get the +0 code in this mode (as Quark writes them), so
//       the output is byte-identical to an AMD Quark 0.13 export of the same weights.
//   emax_elem: E2M1 2, E2M3 2, E3M2 4, E4M3 8, E5M2 15, INT8 0.
// Elements: V / 2^shared (exact in fp32) rounded to nearest, ties to even, in the element
// format (subnormals included), saturated to the largest finite magnitude (E2M1 6, E2M3 7.5,
// E3M2 28, E4M3 448, E5M2 57344, INT8 +-127/64: -128 is never produced). In spec mode the sign
// of the input is kept (IEEE conversion), so negative values that round to zero give the
// negative-zero code (INT8 has none); even mode writes +0 there (see above).
//
// NaN / Inf policy:
//   * a block containing any NaN gets the NaN scale (E8M0 255) and element codes 0: the whole
//     block decodes to NaN (OCP: a NaN scale makes every element of its block NaN);
//   * +-Inf is treated as +-FLT_MAX (saturation): the block's scale is computed from that
//     amax, the infinite element gets the largest code of its sign and the finite elements of
//     the block become (usually) zero. The E5M2 inf code is never produced. Such an element
//     decodes to +-max_elem * 2^shared (finite, or +-inf where that product overflows fp32).
#pragma once
#include <cstdint>

namespace rocq::cpu {

enum MxScaleMode : int {
  kMxScaleSpec = 0,  // OCP spec: floor(log2(amax)) - emax
  kMxScaleEven = 1,  // AMD Quark "even": amax rounded to element precision first
};

// True for the planar OCP MX ids (100..105).
bool is_mx_format(int qtype);

// Quantizes n rows of k fp32 values (row-major, k % 32 == 0) of format `qtype` into `out`
// (n * k/32 * block_bytes bytes) and `scales_out` (n * k/32 E8M0 bytes). Returns false when
// qtype is not an MX format or mode is unknown (nothing written).
bool quantize_mx_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out,
                      int mode = kMxScaleSpec);

}  // namespace rocq::cpu
