// CPU quantizers: fp32 rows -> bytes of a rocq format (GGUF blocks, or MX element plane +
// E8M0 scale plane). Torch-free so that the algorithms can be tested on their own.
#pragma once
#include <cstdint>

namespace rocq::cpu {

// Quantizes `n` rows of `k` fp32 values (row-major, k a multiple of the block size) into
// `out` (n * k / block_elems * block_bytes bytes, the layout of kernels/formats.h). For
// formats with a separate scale plane, `scales_out` receives n * k / 32 E8M0 bytes; otherwise
// it is unused and may be null. Returns false when `qtype` has no quantizer (the caller turns
// that into an error naming the format). Thread-safe; the caller parallelises over rows.
bool quantize_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out);

// True when quantize_rows supports `qtype` (used for error messages and rocq.formats()).
bool can_quantize(int qtype);

}  // namespace rocq::cpu
