// CPU implementations of the rocq ops. They are the reference every GPU path is tested against:
// decode goes through the same kernels/formats.h codecs, matmul accumulates in fp32.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../checks.h"
#include "decode_rows.h"
#include "quantize_gguf.h"

namespace rocq::cpu {
namespace {

// Rows decoded per task: ~256 KiB of fp32 per tile keeps the tile in L2 next to x.
int64_t tile_rows(int64_t k) { return std::max<int64_t>(1, std::min<int64_t>(64, (64 * 1024) / k)); }

template <class Fn>
void with_codec(const QWeight& w, Fn&& fn) {
  const bool ok = dispatch_format(w.fmt->id, fn);
  TORCH_CHECK(ok, "rocq: format ", w.fmt->name, " has no codec");  // unreachable: ids come from the table
}

at::Tensor dequantize_cpu(const at::Tensor& qweight, const std::optional<at::Tensor>& scales, int64_t qtype,
                          int64_t n, int64_t k, at::ScalarType dtype) {
  const QWeight w = check_qweight(qweight, scales, qtype, n, k, "dequantize");
  check_float_dtype(dtype, "dequantize", "dtype");
  const at::Tensor qw = qweight.contiguous();
  const at::Tensor sc = scales_or_undefined(w, scales);
  at::Tensor out = at::empty({n, k}, qweight.options().dtype(at::kFloat));
  const uint8_t* qp = qw.data_ptr<uint8_t>();
  const uint8_t* sp = sc.defined() ? sc.data_ptr<uint8_t>() : nullptr;
  float* op = out.data_ptr<float>();
  with_codec(w, [&](auto codec) {
    using C = decltype(codec);
    at::parallel_for(0, n, tile_rows(k), [&](int64_t r0, int64_t r1) {
      decode_rows<C>(qp, sp, r0, r1, k, w.row_bytes, op + r0 * k);
    });
  });
  return dtype == at::kFloat ? out : out.to(dtype);
}

at::Tensor qmatmul_cpu(const at::Tensor& x, const at::Tensor& qweight, const std::optional<at::Tensor>& scales,
                       int64_t qtype, int64_t n, int64_t k, const std::optional<at::Tensor>& bias) {
  const QWeight w = check_qweight(qweight, scales, qtype, n, k, "qmatmul");
  check_activation(x, w, qweight, bias, "qmatmul");
  const at::Tensor x2 = x.reshape({-1, k}).to(at::kFloat).contiguous();
  const int64_t M = x2.size(0);
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = n;
  at::Tensor y = at::empty({M, n}, x.options().dtype(at::kFloat));
  if (M > 0) {
    const at::Tensor qw = qweight.contiguous();
    const at::Tensor sc = scales_or_undefined(w, scales);
    const uint8_t* qp = qw.data_ptr<uint8_t>();
    const uint8_t* sp = sc.defined() ? sc.data_ptr<uint8_t>() : nullptr;
    const int64_t T = tile_rows(k);
    const int64_t tiles = (n + T - 1) / T;
    with_codec(w, [&](auto codec) {
      using C = decltype(codec);
      // Each task decodes a tile of T weight rows into a private fp32 buffer and multiplies x by
      // it with the (single-threaded, inside this parallel region) BLAS: the whole dequantized
      // weight never exists.
      at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
        at::Tensor tile = at::empty({T, k}, x2.options());
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r0 = t * T, r1 = std::min(n, r0 + T);
          decode_rows<C>(qp, sp, r0, r1, k, w.row_bytes, tile.data_ptr<float>());
          y.narrow(1, r0, r1 - r0).copy_(at::mm(x2, tile.narrow(0, 0, r1 - r0).t()));
        }
      });
    });
  }
  if (bias.has_value() && bias->defined()) y.add_(bias->to(at::kFloat));
  return y.to(x.scalar_type()).reshape(out_shape);
}

std::tuple<at::Tensor, at::Tensor> quantize_cpu(const at::Tensor& wt, int64_t qtype) {
  const QuantizeJob j = prepare_quantize(wt, qtype);
  const int64_t k = j.k, row_bytes = j.row_bytes;
  const float* wp = j.w.data_ptr<float>();
  uint8_t* qp = j.qweight.data_ptr<uint8_t>();
  uint8_t* sp = j.fmt->scale_plane ? j.scales.data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, j.n, std::max<int64_t>(1, 16384 / k), [&](int64_t r0, int64_t r1) {
    quantize_rows(j.fmt->id, wp + r0 * k, r1 - r0, k, qp + r0 * row_bytes, sp ? sp + r0 * (k / 32) : nullptr);
  });
  return {j.qweight, j.scales};
}

}  // namespace

TORCH_LIBRARY_IMPL(rocq, CPU, m) {
  m.impl("qmatmul", &qmatmul_cpu);
  m.impl("dequantize", &dequantize_cpu);
  m.impl("quantize", &quantize_cpu);
}

}  // namespace rocq::cpu
