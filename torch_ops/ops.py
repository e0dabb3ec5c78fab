"""Typed wrappers around torch.ops.rocq.*, with the fake (meta) kernels and autograd that let
every op run under torch.compile and in training graphs.

Contracts (the schemas live in csrc/library.cpp):

qmatmul(x, qweight, scales, qtype, n, k, bias=None) -> y
    y = x @ W^T (+ bias), W [n, k] held quantized. x: [..., k] float32/float16/bfloat16;
    y: [..., n] in x's dtype, accumulated in fp32. Differentiable w.r.t. x and bias (the
    weight is frozen).
dequantize(qweight, scales, qtype, n, k, dtype) -> W [n, k] in dtype, bit-exact decode.
quantize(w, qtype) -> (qweight, scales): w [n, k]; scales is an empty uint8 tensor for formats
    that keep their scales inside the blocks.
"""
from __future__ import annotations

from typing import Optional

import torch

from .formats import QTypeLike, format_info, qtype as _qtype

_ops = torch.ops.rocq


def qmatmul(x: torch.Tensor, qweight: torch.Tensor, scales: Optional[torch.Tensor], qtype: QTypeLike,
            n: int, k: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    return _ops.qmatmul.default(x, qweight, scales, _qtype(qtype), n, k, bias)


def dequantize(qweight: torch.Tensor, scales: Optional[torch.Tensor], qtype: QTypeLike, n: int, k: int,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _ops.dequantize.default(qweight, scales, _qtype(qtype), n, k, dtype)


def quantize(w: torch.Tensor, qtype: QTypeLike) -> tuple[torch.Tensor, torch.Tensor]:
    return _ops.quantize.default(w, _qtype(qtype))


# ---------------------------------------------------------------------------------------------
# Fake kernels: shapes and dtypes only, mirroring the C++ checks that do not need data.
# ---------------------------------------------------------------------------------------------
_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _check_qweight_meta(qweight, scales, qtype, n, k, op):
    f = format_info(qtype)
    torch._check(k % f.block_elems == 0, lambda: f"rocq.{op}: k={k} is not a multiple of the block size "
                 f"{f.block_elems} of format {f.name}")
    torch._check(qweight.dtype == torch.uint8, lambda: f"rocq.{op}: qweight must be uint8, got {qweight.dtype}")
    torch._check(qweight.dim() == 2, lambda: f"rocq.{op}: qweight must be 2-D")
    torch._check(qweight.shape[0] == n and qweight.shape[1] == k // f.block_elems * f.block_bytes,
                 lambda: f"rocq.{op}: qweight must have shape [n, k/{f.block_elems}*{f.block_bytes}]")
    if f.scale_plane:
        torch._check(scales is not None, lambda: f"rocq.{op}: format {f.name} needs scales")
    return f


@torch.library.register_fake("rocq::qmatmul")
def _qmatmul_fake(x, qweight, scales, qtype, n, k, bias=None):
    _check_qweight_meta(qweight, scales, qtype, n, k, "qmatmul")
    torch._check(x.dtype in _FLOATS, lambda: f"rocq.qmatmul: x must be float32/float16/bfloat16, got {x.dtype}")
    torch._check(x.shape[-1] == k, lambda: f"rocq.qmatmul: x must have shape [..., {k}]")
    return x.new_empty((*x.shape[:-1], n))


@torch.library.register_fake("rocq::dequantize")
def _dequantize_fake(qweight, scales, qtype, n, k, dtype):
    _check_qweight_meta(qweight, scales, qtype, n, k, "dequantize")
    return qweight.new_empty((n, k), dtype=dtype)


@torch.library.register_fake("rocq::quantize")
def _quantize_fake(w, qtype):
    f = format_info(qtype)
    torch._check(w.dim() == 2, lambda: "rocq.quantize: w must be 2-D")
    n, k = w.shape
    torch._check(k % f.block_elems == 0, lambda: f"rocq.quantize: k is not a multiple of {f.block_elems}")
    q = w.new_empty((n, k // f.block_elems * f.block_bytes), dtype=torch.uint8)
    s = w.new_empty((n, k // 32) if f.scale_plane else (0, 0), dtype=torch.uint8)
    return q, s


# ---------------------------------------------------------------------------------------------
# Autograd: d(x @ W^T + b) = (g @ W, sum g). The quantized weight is frozen (uint8, no grad).
# ---------------------------------------------------------------------------------------------
def _qmatmul_setup_context(ctx, inputs, output):
    x, qweight, scales, qtype, n, k, bias = inputs
    ctx.save_for_backward(qweight, scales)
    ctx.qtype, ctx.n, ctx.k = qtype, n, k
    ctx.x_dtype = x.dtype
    ctx.bias_dtype = bias.dtype if bias is not None else None


def _qmatmul_backward(ctx, grad):
    qweight, scales = ctx.saved_tensors
    grad_x = grad_bias = None
    if ctx.needs_input_grad[0]:
        w = _ops.dequantize.default(qweight, scales, ctx.qtype, ctx.n, ctx.k, grad.dtype)
        grad_x = (grad @ w).to(ctx.x_dtype)
    if ctx.bias_dtype is not None and ctx.needs_input_grad[6]:
        grad_bias = grad.reshape(-1, grad.shape[-1]).sum(0).to(ctx.bias_dtype)
    return grad_x, None, None, None, None, None, grad_bias


torch.library.register_autograd("rocq::qmatmul", _qmatmul_backward, setup_context=_qmatmul_setup_context)
