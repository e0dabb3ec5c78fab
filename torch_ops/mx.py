"""OCP MX (Microscaling v1.0) helpers: quantization with a choice of scale rule, and lossless
conversion between GGUF's MXFP4 blocks and rocq's planar ``ocp_mxfp4``.

rocq's planar MX formats (ids from kernels/formats.h; layout as AMD Quark exports):

=================  ===  =========  ==============================================================
name               id   bytes/32   element plane (``qweight`` [n, k/32*bytes])
=================  ===  =========  ==============================================================
ocp_mxfp4          100  16         E2M1, element 2i in the LOW nibble of byte i
ocp_mxfp6_e2m3     101  24         E2M3, four codes per little-endian 24-bit word
ocp_mxfp6_e3m2     102  24         E3M2, v0 | v1<<6 | v2<<12 | v3<<18 stored as 3 bytes
ocp_mxfp8_e4m3     103  32         FP8 E4M3 (fn: S.1111.111 = NaN), one byte each
ocp_mxfp8_e5m2     104  32         FP8 E5M2 (IEEE-like inf/NaN), one byte each
ocp_mxint8         105  32         INT8 two's complement times 2^-6, one byte each
=================  ===  =========  ==============================================================

``scales`` is uint8 [n, k/32], E8M0: 2^(e-127), e = 255 is NaN. Value = element * scale.

Scale modes of :func:`quantize_mx` (``rocq.quantize`` always uses "spec"):

* ``"spec"``: OCP MX v1.0 section 6.3 (torchao FLOOR): shared exponent =
  floor(log2(amax)) - emax_elem, clamped to [-127, 127]; an all-zero block gets E8M0 byte 0.
* ``"even"``: AMD Quark's default: amax is rounded to the element's mantissa width (half an
  ulp added to its fp32 bits, a carry bumps the exponent) before the floor(log2); all-zero
  blocks use amax = 2^-126 like Quark. Avoids clipping blocks whose amax sits just below a power
  of two.

Elements are rounded to nearest-even and saturated to the element's largest finite value. NaN
in a block makes the whole block NaN (scale byte 255); +-inf is treated as +-FLT_MAX
(saturation). Details: csrc/cpu/quantize_mx.h.
"""
from __future__ import annotations

from typing import Optional

import torch

from . import _C  # noqa: F401  (registers torch.ops.rocq.*)
from .formats import QTypeLike, format_info

MX_FORMATS: tuple[str, ...] = ("ocp_mxfp4", "ocp_mxfp6_e2m3", "ocp_mxfp6_e3m2", "ocp_mxfp8_e4m3",
                               "ocp_mxfp8_e5m2", "ocp_mxint8")
SCALE_MODES = {"spec": 0, "floor": 0, "even": 1}

# GGUF's MXFP4 block type (ggml id 39): u8 e; u8 qs[16]; element j = low nibble of qs[j],
# element j+16 = high nibble.
GGUF_MXFP4 = 39
OCP_MXFP4 = 100


def is_mx(q: QTypeLike) -> bool:
    """True for rocq's planar OCP MX formats."""
    return format_info(q).name in MX_FORMATS


def _mode_id(mode) -> int:
    if isinstance(mode, int) and not isinstance(mode, bool):
        if mode in (0, 1):
            return mode
    elif isinstance(mode, str) and mode.lower() in SCALE_MODES:
        return SCALE_MODES[mode.lower()]
    raise ValueError(f"rocq.mx: unknown scale mode {mode!r}; use 'spec' (OCP v1.0, default) or 'even' (AMD Quark)")


def quantize_mx(w: torch.Tensor, fmt: QTypeLike = "ocp_mxfp4", mode: str = "spec") -> tuple[torch.Tensor, torch.Tensor]:
    """Quantizes w [n, k] (k % 32 == 0) to a planar OCP MX format; returns (qweight, scales).

    Runs on w's device (the GPU kernel shares its source with the CPU quantizer and gives the
    same bytes); mode is "spec" or "even" (see the module docstring). ``rocq.quantize(w, fmt)`` equals ``quantize_mx(w, fmt, "spec")``.
    """
    f = format_info(fmt)
    if f.name not in MX_FORMATS:
        raise ValueError(f"rocq.mx.quantize_mx: {f.name} is not a planar OCP MX format; one of {', '.join(MX_FORMATS)}")
    m = _mode_id(mode)
    return torch.ops.rocq._quantize_mx.default(w, f.id, m)


@torch.library.register_fake("rocq::_quantize_mx")
def _quantize_mx_fake(w, qtype, mode=0):
    f = format_info(qtype)
    torch._check(f.name in MX_FORMATS, lambda: f"rocq._quantize_mx: {f.name} is not a planar OCP MX format")
    torch._check(w.dim() == 2, lambda: "rocq._quantize_mx: w must be 2-D")
    n, k = w.shape
    torch._check(k % 32 == 0, lambda: "rocq._quantize_mx: k is not a multiple of 32")
    return (w.new_empty((n, k // 32 * f.block_bytes), dtype=torch.uint8),
            w.new_empty((n, k // 32), dtype=torch.uint8))


# ---------------------------------------------------------------------------------------------
# GGUF MXFP4 (id 39) <-> planar ocp_mxfp4 (id 100): pure byte shuffles, any device, lossless.
#
# Both store the same E2M1 codes (sign in bit 3) and the same E8M0 byte per 32 elements; only
# the arrangement differs. Decoded values agree for every scale byte except 255: GGUF/ggml
# decodes e = 255 as 2^127 (x = E2M1 * 2^128, i.e. +-inf for |E2M1| >= 1), OCP as NaN. The
# bytes are carried over unchanged either way, so the conversion itself is lossless.
# ---------------------------------------------------------------------------------------------
def gguf_mxfp4_to_ocp(qweight: torch.Tensor, n: Optional[int] = None, k: Optional[int] = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """GGUF MXFP4 bytes uint8 [n, k/32*17] -> (ocp_mxfp4 qweight uint8 [n, k/2], scales uint8 [n, k/32])."""
    if qweight.dtype != torch.uint8 or qweight.dim() != 2 or qweight.shape[1] % 17 != 0:
        raise ValueError(f"rocq.mx.gguf_mxfp4_to_ocp: expected uint8 [n, k/32*17], got {qweight.dtype} {tuple(qweight.shape)}")
    rows, nb = qweight.shape[0], qweight.shape[1] // 17
    if (n is not None and n != rows) or (k is not None and k != nb * 32):
        raise ValueError(f"rocq.mx.gguf_mxfp4_to_ocp: shape {tuple(qweight.shape)} does not match n={n}, k={k}")
    blk = qweight.reshape(rows, nb, 17)
    scales = blk[..., 0].contiguous()
    qs = blk[..., 1:]
    codes = torch.cat([qs & 0x0F, qs >> 4], dim=-1)  # [rows, nb, 32] in element order
    packed = codes[..., 0::2] | (codes[..., 1::2] << 4)  # element 2i low nibble, 2i+1 high
    return packed.reshape(rows, nb * 16).contiguous(), scales


def ocp_to_gguf_mxfp4(qweight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """ocp_mxfp4 (qweight uint8 [n, k/2], scales uint8 [n, k/32]) -> GGUF MXFP4 bytes uint8 [n, k/32*17]."""
    if qweight.dtype != torch.uint8 or scales.dtype != torch.uint8 or qweight.dim() != 2 or scales.dim() != 2:
        raise ValueError("rocq.mx.ocp_to_gguf_mxfp4: qweight and scales must be 2-D uint8 tensors")
    rows, nb = scales.shape
    if qweight.shape != (rows, nb * 16):
        raise ValueError(f"rocq.mx.ocp_to_gguf_mxfp4: qweight {tuple(qweight.shape)} does not match scales "
                         f"{tuple(scales.shape)} (expected [{rows}, {nb * 16}])")
    if scales.device != qweight.device:
        raise ValueError(f"rocq.mx.ocp_to_gguf_mxfp4: scales on {scales.device}, qweight on {qweight.device}")
    b = qweight.reshape(rows, nb, 16)
    codes = torch.stack([b & 0x0F, b >> 4], dim=-1).reshape(rows, nb, 32)  # element order
    qs = codes[..., :16] | (codes[..., 16:] << 4)
    return torch.cat([scales.reshape(rows, nb, 1), qs], dim=-1).reshape(rows, nb * 17).contiguous()


def gpt_oss_mxfp4_to_ocp(blocks: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gpt-oss / transformers Mxfp4 ``*_blocks`` uint8 [..., n, k/32, 16] + ``*_scales`` [..., n, k/32]
    -> (ocp_mxfp4 qweight [..., n, k/2], scales [..., n, k/32]): the same bytes, reshaped."""
    if blocks.dtype != torch.uint8 or blocks.shape[-1] != 16 or tuple(blocks.shape[:-1]) != tuple(scales.shape):
        raise ValueError(f"rocq.mx.gpt_oss_mxfp4_to_ocp: expected blocks [..., n, k/32, 16] and scales [..., n, k/32], "
                         f"got {tuple(blocks.shape)} and {tuple(scales.shape)}")
    return blocks.reshape(*blocks.shape[:-2], blocks.shape[-2] * 16).contiguous(), scales.contiguous()


__all__ = ["MX_FORMATS", "SCALE_MODES", "is_mx", "quantize_mx", "gguf_mxfp4_to_ocp", "ocp_to_gguf_mxfp4",
           "gpt_oss_mxfp4_to_ocp"]
