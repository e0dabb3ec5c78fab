"""The middle-regime qgemm path (kernels/qgemm*.hip) on the GPU: every format, x in
fp32/fp16/bf16, M from 8 to 256, n and k that are not multiples of its tiles, against an fp64
reference of the CPU-dequantized weight. The path is forced with ROCQ_QMATMUL_PATH=qgemm (read
on every call by csrc/cuda/ops_cuda.cpp), so it is checked at every M whatever the automatic
choice would be. Skipped without a GPU.

Tolerances (relative Frobenius error vs fp64): qgemm rounds each decoded weight once to the
matrix-unit operand type (bf16 for bf16 x, fp16 for fp16 and fp32 x; fp32 x is also rounded to
fp16) and accumulates in fp32; y is then rounded once to x's dtype. Expected errors for random
data: bf16 ~2e-3, fp16 ~4e-4, fp32 ~4e-4. Bounds: bf16 1e-2 and fp16 2e-3 (the same as
tests/test_ops.py), fp32 1.5e-3 (looser than test_ops.py's 1e-4 for fp32 x: that is why the
automatic path choice never sends fp32 x to qgemm).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import rocq
from conftest import rel_err, valid_qweight

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

TOL = {torch.float32: 1.5e-3, torch.float16: 2e-3, torch.bfloat16: 1e-2}
FORMATS = rocq.formats()
MS = [8, 9, 16, 33, 64, 100, 256]


@pytest.fixture
def qgemm_path():
    old = os.environ.get("ROCQ_QMATMUL_PATH")
    os.environ["ROCQ_QMATMUL_PATH"] = "qgemm"
    yield
    if old is None:
        del os.environ["ROCQ_QMATMUL_PATH"]
    else:
        os.environ["ROCQ_QMATMUL_PATH"] = old


def reference(x, qw, sc, fmt, n, k, bias=None):
    w = rocq.dequantize(qw.cpu(), None if sc is None else sc.cpu(), fmt.id, n, k).double()
    y = x.cpu().double() @ w.T
    return y + bias.cpu().double() if bias is not None else y


def finite_qweight(fmt, n, k, rng):
    """valid_qweight, with the fp8 payload codes that mean NaN/inf (random bytes hit them)
    replaced by finite ones, so that the reference is finite."""
    qw, sc = valid_qweight(fmt, n, k, rng)
    if fmt.name == "ocp_mxfp8_e4m3":
        qw = torch.where((qw & 0x7F) == 0x7F, qw ^ 1, qw)
    elif fmt.name == "ocp_mxfp8_e5m2":
        qw = torch.where((qw & 0x7C) == 0x7C, qw & 0xBF, qw)
        # E5M2 reaches 57344: with the shared scales up to 2^-1, sums of a few hundred products
        # overflow an fp16 y (seen on the H200). Smaller scales keep y in range for every dtype.
        sc = sc - 12
    return qw, sc


def run_qgemm(fmt, dtype, M, n, k, rng, with_bias=True):
    qw, sc = finite_qweight(fmt, n, k, rng)
    x = torch.from_numpy(rng.standard_normal((M, k)).astype(np.float32)).to(dtype)
    bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32)).to(dtype) if with_bias else None
    dev = "cuda"
    scd = None if sc is None else sc.to(dev)
    y = rocq.qmatmul(x.to(dev), qw.to(dev), scd, fmt.id, n, k, None if bias is None else bias.to(dev))
    torch.cuda.synchronize()
    assert y.shape == (M, n) and y.dtype == dtype
    return y, reference(x, qw, sc, fmt, n, k, bias)


def k_for(fmt, blocks):
    return blocks * max(fmt.block_elems, 32) + (8 if fmt.block_elems == 1 else 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_qgemm_every_format(fmt, dtype, qgemm_path, rng):
    """Every format and dtype, every M, two odd n; k spans several blocks (and, for 32-element
    blocks, several raw chunks with a partial last one)."""
    for M in MS:
        for n, blocks in [(200, 3 if fmt.block_elems == 256 else 11), (72, 2 if fmt.block_elems == 256 else 5)]:
            k = k_for(fmt, blocks)
            y, ref = run_qgemm(fmt, dtype, M, n, k, rng, with_bias=(n == 200))
            err = rel_err(y, ref)  # rel_err also fails on NaN (poison) or inf
            assert err < TOL[dtype], f"M={M} n={n} k={k}: rel err {err:.3g}"


@pytest.mark.parametrize("fmt_name", ["q4_k", "q4_0", "q8_0", "mxfp4", "q6_k"])
def test_qgemm_unwritten_outputs_and_split_k(fmt_name, qgemm_path, rng):
    """Long k on few rows (the plan splits k across CTAs and reduces the partials in a second
    kernel): the result is right, repeatable bit for bit (deterministic reduction), and no output
    keeps the NaN poison of a reused allocation."""
    fmt = rocq.format_info(fmt_name)
    M, n, k = 33, 136, 256 * 24
    qw, sc = valid_qweight(fmt, n, k, rng)
    x = torch.from_numpy(rng.standard_normal((M, k)).astype(np.float32)).to(torch.bfloat16)
    # poison: fill the caching allocator's next blocks of this size with NaN, then free them
    for _ in range(3):
        p = torch.full((M, n), float("nan"), dtype=torch.bfloat16, device="cuda")
        del p
    xd, qwd = x.cuda(), qw.cuda()
    y1 = rocq.qmatmul(xd, qwd, None, fmt.id, n, k)
    y2 = rocq.qmatmul(xd, qwd, None, fmt.id, n, k)
    torch.cuda.synchronize()
    assert torch.isfinite(y1.float()).all()
    assert torch.equal(y1, y2), "split-k reduction is not deterministic"
    assert rel_err(y1, reference(x, qw, sc, fmt, n, k)) < TOL[torch.bfloat16]


def test_qgemm_unaligned_x_view(qgemm_path, rng):
    """x that is a view not on a 16-byte boundary still gives the right answer."""
    fmt = rocq.format_info("q4_k")
    M, n, k = 16, 72, 512
    qw, sc = valid_qweight(fmt, n, k, rng)
    big = torch.from_numpy(rng.standard_normal(M * k + 3).astype(np.float32)).to(torch.float16)
    x = big[3:].view(M, k)
    y = rocq.qmatmul(x.cuda()[0:M], qw.cuda(), None, fmt.id, n, k)
    xs = big.cuda()[3:].view(M, k)
    y2 = rocq.qmatmul(xs, qw.cuda(), None, fmt.id, n, k)
    torch.cuda.synchronize()
    ref = reference(x, qw, sc, fmt, n, k)
    assert rel_err(y, ref) < TOL[torch.float16] and rel_err(y2, ref) < TOL[torch.float16]


def test_qgemm_leading_dims_and_graph_capture(qgemm_path, rng):
    """[..., k] inputs and CUDA-graph capture (no host sync in the path)."""
    fmt = rocq.format_info("q4_0")
    n, k = 200, 1024
    qw, sc = valid_qweight(fmt, n, k, rng)
    x = torch.from_numpy(rng.standard_normal((2, 20, k)).astype(np.float32)).to(torch.bfloat16).cuda()
    qwd = qw.cuda()
    y = rocq.qmatmul(x, qwd, None, fmt.id, n, k)
    assert y.shape == (2, 20, n)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        rocq.qmatmul(x, qwd, None, fmt.id, n, k)  # warm up outside the capture
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        yg = rocq.qmatmul(x, qwd, None, fmt.id, n, k)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(yg, y)
    assert rel_err(y.reshape(-1, n), reference(x.reshape(-1, k), qw, sc, fmt, n, k)) < TOL[torch.bfloat16]
