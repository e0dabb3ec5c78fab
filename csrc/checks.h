// Argument checks shared by the CPU and GPU implementations of every rocq op.
// Each failure raises a Python exception (ValueError / TypeError / RuntimeError through c10)
// whose message names the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../kernels/formats.h"

namespace rocq {

// The validated geometry of a quantized weight.
struct QWeight {
  const FormatInfo* fmt;
  int64_t n;          // output features (rows)
  int64_t k;          // input features
  int64_t row_bytes;  // bytes of one row of qweight
  int64_t blocks_per_row;
};

// Looks up a format id; raises ValueError listing the known formats when it is unknown.
const FormatInfo& format_or_throw(int64_t qtype, const char* op);

// Checks qweight (uint8 [n, row_bytes]) and scales (uint8 [n, k/32] for formats with a scale
// plane; None or empty otherwise) against (qtype, n, k).
QWeight check_qweight(const at::Tensor& qweight, const std::optional<at::Tensor>& scales, int64_t qtype,
                      int64_t n, int64_t k, const char* op);

// Checks an activation x [..., k] (fp32/fp16/bf16) and an optional bias [n] against the
// weight's device.
void check_activation(const at::Tensor& x, const QWeight& w, const at::Tensor& qweight,
                      const std::optional<at::Tensor>& bias, const char* op);

// The scale plane as a contiguous uint8 tensor, or an undefined tensor when the format has none.
at::Tensor scales_or_undefined(const QWeight& w, const std::optional<at::Tensor>& scales);

// quantize's shared front half: checks w [n, k] (float, 2-D, k a multiple of the block) and that
// the format has a quantizer, then returns w as contiguous fp32 and the outputs allocated on w's
// device: qweight uint8 [n, row_bytes], scales uint8 [n, k/32] (an empty [0, 0] tensor for
// formats without a scale plane). The caller holds a device guard for GPU tensors.
struct QuantizeJob {
  const FormatInfo* fmt;
  int64_t n, k, row_bytes;
  at::Tensor w, qweight, scales;
};
QuantizeJob prepare_quantize(const at::Tensor& w, int64_t qtype);
// The same for the internal op rocq::_quantize_mx (planar OCP MX formats, scale mode 0 or 1).
QuantizeJob prepare_quantize_mx(const at::Tensor& w, int64_t qtype, int64_t mode);

// Output dtypes dequantize may produce.
void check_float_dtype(at::ScalarType dtype, const char* op, const char* what);

}  // namespace rocq
