// rocq's quantizers, one entry per format: Quantizer<ID>::block() quantizes ONE block (kElems
// fp32 values) into its kBytes bytes, plus the E8M0 scale byte for the planar OCP MX formats.
// The same functions run on the host (csrc/cpu/quantize_gguf.cpp, quantize_mx.cpp: the
// reference, loops over rows and blocks) and on the GPU (kernels/quantize.hip: one thread per
// block), so both produce identical bytes. Algorithms: quantize_legacy.h (32-element GGUF
// blocks, MXFP4, IQ4_NL), quantize_kquants.h (K-quants, IQ4_XS), quantize_mx.h (planar OCP MX);
// shared pieces and the build requirements (no fp contraction, IEEE division): quantize_common.h.
//
// Non-finite and out-of-range input (defined behaviour, the same for every GGUF block format):
//   * NaN is quantized as 0 (it never reaches a block's scale);
//   * +-inf, and finite values beyond what the format can represent, saturate: the block's
//     scale is clamped to the largest finite fp16 (E8M0 exponent <= 254 for MXFP4) and the
//     element takes the code of largest magnitude, so every decoded value is finite;
//   * blocks whose values all lie below 1e-20 in magnitude (including all-zero blocks) are
//     written with scale 0 and decode to exact zeros.
// Dense formats convert element-wise as IEEE does: F32 copies the bits, F16 and BF16 round to
// nearest even; NaN stays NaN (quiet), F16 overflow gives +-inf (as torch's .half()).
// Planar OCP MX formats: scale modes and NaN/Inf policy in quantize_mx.h.
//
// Reentrant: no static mutable state; blocks are independent.
#pragma once

#include "quantize_kquants.h"
#include "quantize_legacy.h"
#include "quantize_mx.h"

namespace rocq::quant {

// Quantizer<ID>: kSupported, and for supported formats kElems, kBytes (as Codec<ID>),
// kScalePlane and block(x, out, scale, mode): x[kElems] -> out[kBytes]; `scale` (one E8M0
// byte) and `mode` (MxScaleMode) are used by the planar OCP MX formats only (scale may be
// null for the others).
template <int ID>
struct Quantizer {
  static constexpr bool kSupported = false;
};

template <int ID>
struct QuantizerBase {
  static constexpr bool kSupported = true;
  static constexpr int kId = ID, kElems = Codec<ID>::kElems, kBytes = Codec<ID>::kBytes;
  static constexpr bool kScalePlane = false;
};

#define ROCQ_GGUF_QUANTIZER(ID, FN)                                          \
  template <>                                                                \
  struct Quantizer<ID> : QuantizerBase<ID> {                                 \
    ROCQ_HD static void block(const float* x, uint8_t* out, uint8_t*, int) { \
      FN(x, out);                                                            \
    }                                                                        \
  };
ROCQ_GGUF_QUANTIZER(QT_Q4_0, quantize_block_q4_0)
ROCQ_GGUF_QUANTIZER(QT_Q4_1, quantize_block_q4_1)
ROCQ_GGUF_QUANTIZER(QT_Q5_0, quantize_block_q5_0)
ROCQ_GGUF_QUANTIZER(QT_Q5_1, quantize_block_q5_1)
ROCQ_GGUF_QUANTIZER(QT_Q8_0, quantize_block_q8_0)
ROCQ_GGUF_QUANTIZER(QT_MXFP4, quantize_block_mxfp4)
ROCQ_GGUF_QUANTIZER(QT_IQ4_NL, quantize_block_iq4_nl)
ROCQ_GGUF_QUANTIZER(QT_Q2_K, quantize_block_q2_k)
ROCQ_GGUF_QUANTIZER(QT_Q3_K, quantize_block_q3_k)
ROCQ_GGUF_QUANTIZER(QT_Q4_K, quantize_block_q4_k)
ROCQ_GGUF_QUANTIZER(QT_Q5_K, quantize_block_q5_k)
ROCQ_GGUF_QUANTIZER(QT_Q6_K, quantize_block_q6_k)
ROCQ_GGUF_QUANTIZER(QT_IQ4_XS, quantize_block_iq4_xs)
#undef ROCQ_GGUF_QUANTIZER

// Dense formats: one element per block.
template <>
struct Quantizer<QT_F32> : QuantizerBase<QT_F32> {
  ROCQ_HD static void block(const float* x, uint8_t* out, uint8_t*, int) { put32(out, rq_float_to_bits(x[0])); }
};
template <>
struct Quantizer<QT_F16> : QuantizerBase<QT_F16> {
  ROCQ_HD static void block(const float* x, uint8_t* out, uint8_t*, int) {
    put16(out, rq_float_to_half_bits(x[0]));
  }
};
template <>
struct Quantizer<QT_BF16> : QuantizerBase<QT_BF16> {
  ROCQ_HD static void block(const float* x, uint8_t* out, uint8_t*, int) {
    put16(out, rq_float_to_bf16_bits(x[0]));
  }
};

// Planar OCP MX formats: one 32-element group and its scale byte.
template <int ID>
struct MxQuantizer : QuantizerBase<ID> {
  static constexpr bool kScalePlane = true;
  ROCQ_HD static void block(const float* x, uint8_t* out, uint8_t* scale, int mode) {
    quantize_block_mx<ID>(x, out, scale, mode);
  }
};
template <> struct Quantizer<QT_OCP_MXFP4> : MxQuantizer<QT_OCP_MXFP4> {};
template <> struct Quantizer<QT_OCP_MXFP6_E2M3> : MxQuantizer<QT_OCP_MXFP6_E2M3> {};
template <> struct Quantizer<QT_OCP_MXFP6_E3M2> : MxQuantizer<QT_OCP_MXFP6_E3M2> {};
template <> struct Quantizer<QT_OCP_MXFP8_E4M3> : MxQuantizer<QT_OCP_MXFP8_E4M3> {};
template <> struct Quantizer<QT_OCP_MXFP8_E5M2> : MxQuantizer<QT_OCP_MXFP8_E5M2> {};
template <> struct Quantizer<QT_OCP_MXINT8> : MxQuantizer<QT_OCP_MXINT8> {};

// True when format `id` has a quantizer.
ROCQ_HD bool can_quantize(int id) {
  switch (id) {
#define ROCQ_X(tag, name, fid, elems, bytes, plane) \
  case fid:                                         \
    return Quantizer<fid>::kSupported;
    ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X
    default:
      return false;
  }
}

// Every quantizer agrees with its ROCQ_FORMATS row (block size, bytes, scale plane).
template <int ID>
constexpr bool quantizer_matches_row(int elems, int bytes, bool plane) {
  if constexpr (Quantizer<ID>::kSupported)
    return Quantizer<ID>::kElems == elems && Quantizer<ID>::kBytes == bytes && Quantizer<ID>::kScalePlane == plane;
  else
    return true;
}
#define ROCQ_X(tag, name, fid, elems, bytes, plane) \
  static_assert(quantizer_matches_row<fid>(elems, bytes, plane != 0), "quantizer of " name " disagrees with its row");
ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X

// fn(Quantizer<ID>{}) for a run-time id (host code). Returns false, calling nothing, when the
// id is unknown or has no quantizer.
template <typename Fn>
inline bool dispatch_quantizer(int id, Fn&& fn) {
  switch (id) {
#define ROCQ_X(tag, name, fid, elems, bytes, plane) \
  case fid:                                         \
    if constexpr (Quantizer<fid>::kSupported) {     \
      fn(Quantizer<fid>{});                         \
      return true;                                  \
    } else {                                        \
      return false;                                 \
    }
    ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X
    default:
      return false;
  }
}

}  // namespace rocq::quant
