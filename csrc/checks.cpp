#include "checks.h"

#include "cpu/quantize_gguf.h"
#include "cpu/quantize_mx.h"

#include <sstream>
#include <string>

namespace rocq {

namespace {
std::string known_formats() {
  std::ostringstream s;
  for (int i = 0; i < kNumFormats; ++i) s << (i ? ", " : "") << kFormats[i].name << "=" << kFormats[i].id;
  return s.str();
}
}  // namespace

const FormatInfo& format_or_throw(int64_t qtype, const char* op) {
  const FormatInfo* f = find_format((int)qtype);
  TORCH_CHECK_VALUE(f != nullptr && qtype == (int64_t)f->id, "rocq.", op, ": unknown qtype ", qtype,
                    "; known formats: ", known_formats());
  return *f;
}

void check_float_dtype(at::ScalarType dtype, const char* op, const char* what) {
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16, "rocq.", op, ": ", what,
                   " must be float32, float16 or bfloat16, got ", dtype);
}

QWeight check_qweight(const at::Tensor& qweight, const std::optional<at::Tensor>& scales, int64_t qtype,
                      int64_t n, int64_t k, const char* op) {
  const FormatInfo& f = format_or_throw(qtype, op);
  TORCH_CHECK_VALUE(n > 0 && k > 0, "rocq.", op, ": n and k must be positive, got n=", n, ", k=", k);
  TORCH_CHECK_VALUE(k % f.block_elems == 0, "rocq.", op, ": k=", k, " is not a multiple of the block size ",
                    f.block_elems, " of format ", f.name);
  TORCH_CHECK_TYPE(qweight.scalar_type() == at::kByte, "rocq.", op, ": qweight must be uint8 (raw format bytes), got ",
                   qweight.scalar_type());
  const int64_t blocks = k / f.block_elems;
  const int64_t row_bytes = blocks * f.block_bytes;
  TORCH_CHECK_VALUE(qweight.dim() == 2 && qweight.size(0) == n && qweight.size(1) == row_bytes, "rocq.", op,
                    ": qweight must have shape [n, k / ", f.block_elems, " * ", f.block_bytes, "] = [", n, ", ",
                    row_bytes, "] for format ", f.name, " with n=", n, ", k=", k, ", got ", qweight.sizes());
  const bool has_scales = scales.has_value() && scales->defined() && scales->numel() > 0;
  if (f.scale_plane) {
    TORCH_CHECK_VALUE(has_scales, "rocq.", op, ": format ", f.name, " needs its E8M0 scale plane: scales must be a uint8 tensor [",
                      n, ", ", k / 32, "], got None");
    TORCH_CHECK_TYPE(scales->scalar_type() == at::kByte, "rocq.", op, ": scales must be uint8 (E8M0), got ",
                     scales->scalar_type());
    TORCH_CHECK_VALUE(scales->dim() == 2 && scales->size(0) == n && scales->size(1) == k / 32, "rocq.", op,
                      ": scales must have shape [n, k/32] = [", n, ", ", k / 32, "] for format ", f.name, ", got ",
                      scales->sizes());
    TORCH_CHECK_VALUE(scales->device() == qweight.device(), "rocq.", op, ": scales is on ", scales->device(),
                      " but qweight is on ", qweight.device());
  } else {
    TORCH_CHECK_VALUE(!has_scales, "rocq.", op, ": format ", f.name,
                      " keeps its scales inside the blocks; pass scales=None (or an empty tensor), got a tensor of shape ",
                      scales->sizes());
  }
  return QWeight{&f, n, k, row_bytes, blocks};
}

void check_activation(const at::Tensor& x, const QWeight& w, const at::Tensor& qweight,
                      const std::optional<at::Tensor>& bias, const char* op) {
  check_float_dtype(x.scalar_type(), op, "x");
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.size(-1) == w.k, "rocq.", op, ": x must have shape [..., k] with k=", w.k,
                    ", got ", x.sizes());
  TORCH_CHECK_VALUE(x.device() == qweight.device(), "rocq.", op, ": x is on ", x.device(), " but qweight is on ",
                    qweight.device(), "; move both to the same device");
  if (bias.has_value() && bias->defined()) {
    check_float_dtype(bias->scalar_type(), op, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == w.n, "rocq.", op, ": bias must have shape [n] = [", w.n,
                      "], got ", bias->sizes());
    TORCH_CHECK_VALUE(bias->device() == x.device(), "rocq.", op, ": bias is on ", bias->device(), " but x is on ",
                      x.device());
  }
}

at::Tensor scales_or_undefined(const QWeight& w, const std::optional<at::Tensor>& scales) {
  if (!w.fmt->scale_plane) return at::Tensor();
  return scales->contiguous();
}

QuantizeJob prepare_quantize(const at::Tensor& wt, int64_t qtype) {
  const FormatInfo& f = format_or_throw(qtype, "quantize");
  check_float_dtype(wt.scalar_type(), "quantize", "w");
  TORCH_CHECK_VALUE(wt.dim() == 2, "rocq.quantize: w must be a 2-D weight [n, k], got shape ", wt.sizes());
  const int64_t n = wt.size(0), k = wt.size(1);
  TORCH_CHECK_VALUE(n > 0 && k > 0, "rocq.quantize: w must be non-empty, got shape ", wt.sizes());
  TORCH_CHECK_VALUE(k % f.block_elems == 0, "rocq.quantize: k=", k, " is not a multiple of the block size ",
                    f.block_elems, " of format ", f.name);
  TORCH_CHECK_NOT_IMPLEMENTED(cpu::can_quantize(f.id), "rocq.quantize: no quantizer for format ", f.name,
                              " (it can be loaded and multiplied, not produced)");
  QuantizeJob job{&f, n, k, k / f.block_elems * f.block_bytes, wt.to(at::kFloat).contiguous(), {}, {}};
  job.qweight = at::empty({n, job.row_bytes}, job.w.options().dtype(at::kByte));
  job.scales = at::empty({f.scale_plane ? n : 0, f.scale_plane ? k / 32 : 0}, job.w.options().dtype(at::kByte));
  return job;
}

QuantizeJob prepare_quantize_mx(const at::Tensor& wt, int64_t qtype, int64_t mode) {
  const FormatInfo& f = format_or_throw(qtype, "_quantize_mx");
  TORCH_CHECK_VALUE(cpu::is_mx_format(f.id), "rocq._quantize_mx: format ", f.name,
                    " is not a planar OCP MX format (ocp_mxfp4, ocp_mxfp6_e2m3, ocp_mxfp6_e3m2, ocp_mxfp8_e4m3, "
                    "ocp_mxfp8_e5m2, ocp_mxint8)");
  TORCH_CHECK_VALUE(mode == cpu::kMxScaleSpec || mode == cpu::kMxScaleEven, "rocq._quantize_mx: unknown scale mode ",
                    mode, " (0 = spec, 1 = even)");
  check_float_dtype(wt.scalar_type(), "_quantize_mx", "w");
  TORCH_CHECK_VALUE(wt.dim() == 2, "rocq._quantize_mx: w must be a 2-D weight [n, k], got shape ", wt.sizes());
  const int64_t n = wt.size(0), k = wt.size(1);
  TORCH_CHECK_VALUE(n > 0 && k > 0, "rocq._quantize_mx: w must be non-empty, got shape ", wt.sizes());
  TORCH_CHECK_VALUE(k % 32 == 0, "rocq._quantize_mx: k=", k, " is not a multiple of the block size 32 of format ",
                    f.name);
  QuantizeJob job{&f, n, k, k / 32 * f.block_bytes, wt.to(at::kFloat).contiguous(), {}, {}};
  job.qweight = at::empty({n, job.row_bytes}, job.w.options().dtype(at::kByte));
  job.scales = at::empty({n, k / 32}, job.w.options().dtype(at::kByte));
  return job;
}

}  // namespace rocq
