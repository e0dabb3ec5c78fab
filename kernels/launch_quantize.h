// rocq GPU quantizer launch (torch-free; conventions of launch.h: raw pointers, sizes and a
// stream as void*; launches on that stream, never synchronises, never allocates; returns
// nullptr on success or a static/driver error string).
#pragma once

#include <cstdint>

namespace rocq::gpu {

// Quantizes W[n, k] (contiguous fp32 on the device) into `out` (contiguous [n, k / block_elems
// * block_bytes] bytes) and, for the planar OCP MX formats, `scales` (contiguous [n, k/32] E8M0
// bytes; null otherwise). One thread per block runs the per-block quantizer of
// kernels/quantize_blocks.h, the same function the CPU op runs, so the bytes are identical to
// rocq::cpu::quantize_rows (mode 0) / quantize_mx_rows (mode 0 = spec, 1 = even; used by the
// planar MX formats only, ignored by the others). k must be a multiple of the block size.
const char* launch_quantize(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales,
                            int mode, void* stream);

}  // namespace rocq::gpu
