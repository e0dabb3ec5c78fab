// CPU quantizer for rocq's planar OCP MX formats (ocp_mxfp4 .. ocp_mxint8, ids 100..105):
// fp32 rows -> element plane (layout of kernels/formats_mx.h) + E8M0 scale plane [n, k/32].
// Torch-free; thread-safe (no static mutable state); the caller parallelises over rows.
// The per-group algorithm, the scale modes (spec / even) and the NaN/Inf policy are documented
// in kernels/quantize_mx.h (shared with the GPU kernel kernels/quantize.hip).
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
