// rocq::cpu::quantize_rows / can_quantize: dispatch over formats, and the dense conversions.
// The block quantizers live in quantize_legacy.cpp (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4),
// quantize_kquants.cpp (Q2_K..Q6_K) and quantize_iq4.cpp (IQ4_NL, IQ4_XS); rocq's planar OCP MX
// formats (ids 100..105, separate E8M0 scale plane) are forwarded to quantize_mx.cpp with the
// OCP spec scale rule (its own NaN/Inf policy is documented in quantize_mx.h).
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
//
// Reentrant: no static mutable state; rows are independent, so the caller may split [0, n)
// across threads freely.
#include "quantize_gguf.h"

#include "quantize_common.h"
#include "quantize_mx.h"

namespace rocq::cpu {
namespace {

using BlockFn = void (*)(const float*, uint8_t*);

struct BlockQuant {
  int id;
  BlockFn fn;
};

constexpr BlockQuant kBlockQuants[] = {
    {QT_Q4_0, detail::quantize_block_q4_0},   {QT_Q4_1, detail::quantize_block_q4_1},
    {QT_Q5_0, detail::quantize_block_q5_0},   {QT_Q5_1, detail::quantize_block_q5_1},
    {QT_Q8_0, detail::quantize_block_q8_0},   {QT_Q2_K, detail::quantize_block_q2_k},
    {QT_Q3_K, detail::quantize_block_q3_k},   {QT_Q4_K, detail::quantize_block_q4_k},
    {QT_Q5_K, detail::quantize_block_q5_k},   {QT_Q6_K, detail::quantize_block_q6_k},
    {QT_IQ4_NL, detail::quantize_block_iq4_nl}, {QT_IQ4_XS, detail::quantize_block_iq4_xs},
    {QT_MXFP4, detail::quantize_block_mxfp4},
};

BlockFn find_block_fn(int qtype) {
  for (const BlockQuant& b : kBlockQuants)
    if (b.id == qtype) return b.fn;
  return nullptr;
}

bool is_dense(int qtype) { return qtype == QT_F32 || qtype == QT_F16 || qtype == QT_BF16; }

void quantize_dense(int qtype, const float* w, int64_t count, uint8_t* out) {
  if (qtype == QT_F32) {
    std::memcpy(out, w, (size_t)count * 4);
  } else if (qtype == QT_F16) {
    for (int64_t i = 0; i < count; ++i) detail::put16(out + 2 * i, rq_float_to_half_bits(w[i]));
  } else {
    for (int64_t i = 0; i < count; ++i) detail::put16(out + 2 * i, rq_float_to_bf16_bits(w[i]));
  }
}

}  // namespace

bool can_quantize(int qtype) { return is_dense(qtype) || find_block_fn(qtype) != nullptr || is_mx_format(qtype); }

bool quantize_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out) {
  if (is_mx_format(qtype)) return quantize_mx_rows(qtype, w, n, k, out, scales_out, kMxScaleSpec);
  const FormatInfo* f = find_format(qtype);
  if (f == nullptr || !can_quantize(qtype) || n < 0 || k < 0 || k % f->block_elems != 0) return false;
  if (is_dense(qtype)) {
    quantize_dense(qtype, w, n * k, out);
    return true;
  }
  const BlockFn fn = find_block_fn(qtype);
  const int64_t nb = k / f->block_elems;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < nb; ++b)
      fn(w + r * k + b * f->block_elems, out + (r * nb + b) * f->block_bytes);
  return true;
}

}  // namespace rocq::cpu
