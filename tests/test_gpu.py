"""GPU-specific tests of rocq's CUDA/HIP ops (the device-parametrised CPU tests live in
test_ops.py). Skipped when no GPU is present.

Tolerances (relative Frobenius error against an fp64 product of the CPU-dequantized weight):
  fp32 x: 1e-4 on every path (fused: fp32 math; dequantize+BLAS: fp32 weight, fp32 GEMM);
  fp16 x: 2e-3 (output rounded to fp16, 2^-11; the dequantize+BLAS path also rounds W to fp16);
  bf16 x: 1.5e-2 (output rounded to bf16, 2^-8; the dequantize+BLAS path rounds W to bf16).
Every GPU output is written into memory that was filled with NaN bytes just before (the caching
allocator hands the freed poison block back), so an element the kernel forgot stays NaN.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import rocq
from conftest import rel_err, valid_qweight

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1.5e-2}
MS = [1, 2, 3, 7, 8, 16, 33, 100, 300]
PATHS = ["fused", "dequant", "auto"]


def all_formats():
    return list(rocq.formats())


def shapes(fmt):
    """(n, k): odd n; k several blocks and not a power of two."""
    if fmt.block_elems == 1:
        return [(13, 40), (7, 37)]  # dense: k % 8 == 0 (fast kernel) and a ragged k
    return [(13, fmt.block_elems * 7), (37, fmt.block_elems * 3)]


def poison(nbytes: int, value: int = 0xFF):
    """Fill then free a block of the caching allocator, so the next allocation of that size
    (the op's output) starts as `value` bytes (0xFF: NaN in fp32/fp16/bf16)."""
    t = torch.full((max(nbytes, 1),), value, dtype=torch.uint8, device="cuda")
    del t


def finite_weight(fmt, n, k, rng):
    """A valid weight whose decoded values are all finite (re-draws formats that can encode
    inf/NaN, e.g. fp8 elements), with its CPU fp32 dequantization."""
    for _ in range(20):
        qw, sc = valid_qweight(fmt, n, k, rng)
        w = rocq.dequantize(qw, sc, fmt.id, n, k, torch.float32)
        if torch.isfinite(w).all():
            return qw, sc, w
    bad = ~torch.isfinite(w)
    pytest.skip(f"{fmt.name}: could not draw a finite random weight ({int(bad.sum())} non-finite)")


class PathEnv:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.old = os.environ.get("ROCQ_QMATMUL_PATH")
        if self.path == "auto":
            os.environ.pop("ROCQ_QMATMUL_PATH", None)
        else:
            os.environ["ROCQ_QMATMUL_PATH"] = self.path

    def __exit__(self, *a):
        if self.old is None:
            os.environ.pop("ROCQ_QMATMUL_PATH", None)
        else:
            os.environ["ROCQ_QMATMUL_PATH"] = self.old


def check_dequantize_bit_exact(fmt, dtype, n, k, rng):
    qw, sc = valid_qweight(fmt, n, k, rng)
    ref = rocq.dequantize(qw, sc, fmt.id, n, k, dtype)
    qwd, scd = qw.cuda(), (sc.cuda() if sc is not None else None)
    outs = []
    for value in (0xFF, 0x00):
        poison(n * k * ref.element_size(), value)
        outs.append(rocq.dequantize(qwd, scd, fmt.id, n, k, dtype).cpu())
    assert outs[0].dtype == dtype and outs[0].shape == (n, k)
    # Same bits in both runs (an unwritten element would show the two poison values) ...
    assert torch.equal(outs[0].view(-1).view(torch.uint8), outs[1].view(-1).view(torch.uint8))
    # ... and the CPU op's values (NaN where the CPU has NaN: fp8 element codes).
    torch.testing.assert_close(outs[0], ref, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fmt", all_formats(), ids=lambda f: f.name)
def test_dequantize_bit_exact(fmt, dtype, rng):
    for n, k in shapes(fmt):
        check_dequantize_bit_exact(fmt, dtype, n, k, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fmt", [f for f in all_formats() if f.block_elems > 1], ids=lambda f: f.name)
def test_dequantize_stream_chunks(fmt, dtype, rng):
    """The streaming dequantize kernel over several whole chunks and a partial last one (a chunk
    is 16384 elements: the test_dequantize_bit_exact shapes of the 32-element formats fit in
    one partial chunk): 67 x 1280 is 5.2 chunks; then 61 rows of 41 blocks (32-element formats)
    or 5 (256-element ones), whose weight ends inside a 16-byte vector where the block size
    allows (the last chunk's byte-wise copy)."""
    check_dequantize_bit_exact(fmt, dtype, 67, 1280, rng)
    check_dequantize_bit_exact(fmt, dtype, 61, fmt.block_elems * (41 if fmt.block_elems == 32 else 5), rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fmt", all_formats(), ids=lambda f: f.name)
def test_qmatmul_vs_fp64(fmt, dtype, rng):
    for n, k in shapes(fmt):
        qw, sc, w = finite_weight(fmt, n, k, rng)
        qwd, scd = qw.cuda(), (sc.cuda() if sc is not None else None)
        w64 = w.double()
        for M in MS:
            x = torch.from_numpy(rng.standard_normal((M, k)).astype(np.float32)).to(dtype)
            bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) if M % 2 else None
            ref = x.double() @ w64.T
            if bias is not None:
                ref = ref + bias.double()
            xd = x.cuda()
            bd = bias.cuda() if bias is not None else None
            for path in PATHS:
                with PathEnv(path):
                    poison(M * n * x.element_size())
                    y = rocq.qmatmul(xd, qwd, scd, fmt.id, n, k, bd)
                assert y.dtype == dtype and y.shape == (M, n) and y.device.type == "cuda"
                err = rel_err(y, ref)
                assert err < TOL[dtype], f"{fmt.name} {dtype} M={M} n={n} k={k} path={path}: rel err {err:.3g}"


@pytest.mark.parametrize("fmt", ["q4_0", "q4_k", "q6_k", "mxfp4", "f16", "ocp_mxfp4"])
def test_qmatmul_unaligned_views(fmt, rng):
    """x and qweight as views at odd byte offsets (simple kernel / aligned copy of x), 3-D x."""
    f = rocq.format_info(fmt)
    n, k = 11, f.block_elems * 5 if f.block_elems > 1 else 40
    qw, sc, w = finite_weight(f, n, k, rng)
    buf = torch.zeros(qw.numel() + 1, dtype=torch.uint8)
    buf[1:] = qw.reshape(-1)
    qwv = buf.cuda()[1:].view(n, -1)  # data pointer 1 byte past an aligned allocation
    xs = torch.from_numpy(rng.standard_normal((2, 3, k + 1)).astype(np.float32)).cuda()
    x = xs[..., 1:]  # last-dim offset: not 16-byte aligned, not contiguous
    with PathEnv("fused"):
        y = rocq.qmatmul(x, qwv, sc.cuda() if sc is not None else None, f.id, n, k)
    ref = x.double().cpu() @ w.double().T
    assert y.shape == (2, 3, n)
    assert rel_err(y, ref) < 1e-4


def _fast_blocks(f, blocks: int) -> int:
    """The fewest blocks >= `blocks` whose row is a whole number of 16-byte vectors: the fast
    decode kernels (integer pieces, matrix units) need 16-byte aligned rows; other rows take the
    simple kernel (kernels/qmatvec.hip)."""
    u = 16 // math.gcd(f.block_bytes, 16)
    return -(-blocks // u) * u


@pytest.mark.parametrize("fmt", ["q4_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0", "iq4_xs", "mxfp4",
                                 "ocp_mxfp4", "ocp_mxfp6_e3m2", "ocp_mxfp8_e4m3", "bf16"])
def test_qmatmul_fused_large(fmt, rng):
    """The fused decode kernel on a layer larger than one pass of the device: many more CTAs
    than fit at once, k of several thousand (k-split partial sums), n not a multiple of the
    rows per CTA; fp32 x, so the bound is the fp32 one."""
    f = rocq.format_info(fmt)
    n = 4099
    # (16-byte rows for every format, so the fast kernel - not the simple one - runs: _fast_blocks)
    k = f.block_elems * _fast_blocks(f, 300 if f.block_elems <= 32 else 37) if f.block_elems > 1 else 9608
    g = torch.Generator(device="cpu").manual_seed(7)
    qwd, scd = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)  # GPU quantize: bit-exact, fast
    scd = scd if scd.numel() else None
    w64 = rocq.dequantize(qwd, scd, f.id, n, k, torch.float32).double()
    assert torch.isfinite(w64).all()
    for M in (1, 2, 5):
        x = torch.randn(M, k, generator=g).cuda()
        bias = torch.randn(n, generator=g).cuda() if M != 2 else None
        ref = x.double() @ w64.T + (bias.double() if bias is not None else 0)
        with PathEnv("fused"):
            poison(M * n * 4)
            y = rocq.qmatmul(x, qwd, scd, f.id, n, k, bias)
        err = rel_err(y, ref)
        assert err < 1e-4, f"{fmt} M={M}: rel err {err:.3g}"


# Formats with a matrix-unit fragment decoder (kernels/qfrag.h kQFragOn).
QMMA_FORMATS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs", "mxfp4",
                "ocp_mxfp4", "ocp_mxfp8_e4m3", "ocp_mxfp8_e5m2"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fmt", QMMA_FORMATS)
def test_qmatmul_matrix_units(fmt, dtype):
    """The matrix-unit decode kernel (kernels/qmma*, M = 2..5 up to 32 of 16-bit x on NVIDIA, per
    format: qmma.hip qmma_first_rows; up to 64 when the fused path is forced): every x
    tile width (M up to 8, 16, 32, 64 and beyond: several x tiles), n not a multiple of the 32
    rows per CTA, k not a multiple of the chunks the warps of a CTA take per round (a partial
    last round), with and without bias; codes and x are exact operands and the sums fp32 (above
    16 rows the weights are rounded to the operand type with their scales folded in,
    qmma_stream.h qmma_folds), so the bound is the output rounding. A large layer (many CTAs) too, and two calls agree bit for bit
    (fixed-order reduction). Unwritten outputs stay NaN (poison). M = 1 and M > 64 check the
    kernels the chooser picks there."""
    f = rocq.format_info(fmt)
    g = torch.Generator(device="cpu").manual_seed(5)
    bound = {torch.float16: 1.2e-3, torch.bfloat16: 6e-3}[dtype]
    # (200 rows: partial last window; 8456: many CTAs; 77 rows x k ~ 13k: every warp walks several
    # windows, so buffers rotate and are refilled, and a partial window follows full ones)
    # (block counts rounded up to 16-byte rows, _fast_blocks: 35 -> 36 for 4-aligned formats, so
    # that an 8-block window is partial; 8 for Q4_0/Q5_0/Q8_0/IQ4_NL/Q6_K, whose aligned rows are
    # whole windows anyway)
    for n, blocks in ((200, 35 if f.block_elems == 32 else 5), (8456, 16 if f.block_elems == 32 else 2),
                      (77, 411 if f.block_elems == 32 else 51)):
        k = f.block_elems * _fast_blocks(f, blocks)
        qw, sc = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)
        sc = sc if sc.numel() else None
        w64 = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double().cpu()
        for M in ((1, 2, 3, 8, 9, 16, 17, 33, 64, 70) if n == 200 else (5, 40) if n == 8456 else (2, 9, 32)):
            x = (torch.randn(M, k, generator=g) * 3).to(dtype)
            bias = torch.randn(n, generator=g) if M % 2 else None
            ref = x.double() @ w64.T + (bias.double() if bias is not None else 0)
            with PathEnv("fused"):
                poison(M * n * 2)
                y = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k, None if bias is None else bias.cuda())
                y2 = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k, None if bias is None else bias.cuda())
            err = rel_err(y, ref)
            assert err < bound, f"{fmt} {dtype} M={M} n={n} k={k}: rel err {err:.3g}"
            assert torch.equal(y, y2)


def test_qmatmul_matrix_units_streaming():
    """The streaming matrix-unit kernel (kernels/qmma_stream.h: one x tile, M <= 8, at least
    as many 16-row groups as multiprocessors): n not a multiple of 16 and more groups than the
    persistent CTAs (each walks several), k of a few stages with a partial last one (some warps
    with part of a window, some with none); OCP MX also at k / 32 = 181, E8M0 rows that are not
    whole 4-byte words (read from global memory, not staged). M = 1 and 2 (the integer streaming kernel's rows
    otherwise) run in a child process with ROCQ_QMMA=1 ROCQ_QMV_STREAM=0 and every format on it
    (ROCQ_QMMA_STREAM=1, not only the measured choice); a second child with
    ROCQ_QMMA_STREAM=0 must give the same sums as qmma_kernel up to fp32 summation order, and
    both stay within the output rounding of the fp64 reference. Unwritten outputs stay NaN."""
    code = (
        "import math, torch, rocq\n"
        "g = torch.Generator().manual_seed(11)\n"
        "out = {}\n"
        "for name in %r:\n"
        "    f = rocq.format_info(name)\n"
        "    u = 16 // math.gcd(f.block_bytes, 16)\n"
        # 180 blocks where rows allow: part of a window; OCP MX also 181, E8M0 rows not whole words
        "    for blocks in [-(-(5760 // f.block_elems) // u) * u] + ([181] if name.startswith('ocp_') else []):\n"
        "     n, k = 16 * 600 + 5, f.block_elems * blocks\n"
        "     qw, sc = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)\n"
        "     sc = sc if sc.numel() else None\n"
        "     w = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double().cpu()\n"
        "     for dt, bound in ((torch.float16, 1.2e-3), (torch.bfloat16, 6e-3)):\n"
        "        for M in (1, 2, 3, 5, 8):\n"
        "            x = (torch.randn(M, k, generator=g) * 3).to(dt)\n"
        "            bias = torch.randn(n, generator=g) if M %% 2 else None\n"
        "            r = x.double() @ w.T + (bias.double() if bias is not None else 0)\n"
        "            x = x.cuda(); bias = None if bias is None else bias.cuda()\n"
        "            p = torch.full((M * n * 2,), 0xFF, dtype=torch.uint8, device='cuda'); del p\n"  # poison
        "            y = rocq.qmatmul(x, qw, sc, f.id, n, k, bias).double().cpu()\n"
        "            assert bool(torch.isfinite(y).all()), (name, k, dt, M)\n"
        "            e = float((y - r).norm() / r.norm())\n"
        "            assert e < bound, (name, k, dt, M, e)\n"
        "            out[(name, k, str(dt), M)] = y\n"
        "torch.save(out, OUT)\n"
        "print('ok')\n" % (QMMA_FORMATS,)
    )
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        runs = {}
        for tag, extra in (("stream", {}), ("qmma", {"ROCQ_QMMA_STREAM": "0"})):
            path = os.path.join(d, tag + ".pt")
            r = _child(["-c", "OUT = %r\n" % path + code], ROCQ_QMMA="1", ROCQ_QMV_STREAM="0",
                       ROCQ_QMATMUL_PATH="fused", **{"ROCQ_QMMA_STREAM": "1", **extra})
            assert r.returncode == 0 and "ok" in r.stdout, (tag, r.stderr[-3000:])
            runs[tag] = torch.load(path)
        for key, y in runs["stream"].items():
            y0 = runs["qmma"][key]
            assert float((y - y0).norm() / y0.norm()) < 1e-2, key


@pytest.mark.parametrize("fmt", QMMA_FORMATS)
def test_qmatmul_matrix_units_wide(fmt):
    """The wide matrix-unit kernel (kernels/qmma_wide.h: M = 9..64, 128 weight rows per CTA, x
    tiles in shared memory) on a layer of at least one CTA per multiprocessor (its launch rule):
    n not a multiple of 128, k of several stages with a partial last one, every x-tile count (M
    = 9, 16 | 17, 32 | 33, 64), fp16 and bf16 x, with and without bias, on the automatic path
    and the forced fused one; within the output rounding of the fp64 reference (above 16 rows
    the weights are rounded to the operand type with their scales folded in, qmma_stream.h
    qmma_folds: the same bound holds), unwritten outputs NaN-poisoned (Q6_K: its 210-byte
    windows copied as 16-byte aligned spans). OCP MX formats also at k % 128 == 0, where their
    E8M0 bytes travel with the stages (a partial last stage for FP4)."""
    f = rocq.format_info(fmt)
    g = torch.Generator(device="cpu").manual_seed(13)
    n = 128 * (torch.cuda.get_device_properties(0).multi_processor_count + 9) + 5  # (its rule: a CTA per SM)
    ks = [f.block_elems * _fast_blocks(f, -(-4400 // f.block_elems))]  # 9 to 18 stages
    if fmt.startswith("ocp_"):
        ks.append(4480)  # 140 E8M0 bytes per row: whole words, 17.5 FP4 stages
    for k in ks:
        qw, sc = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)
        sc = sc if sc.numel() else None
        w64 = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double().cpu()
        for dtype, bound in ((torch.float16, 1.2e-3), (torch.bfloat16, 6e-3)):
            for M in (9, 16, 17, 32, 33, 64):
                x = (torch.randn(M, k, generator=g) * 3).to(dtype)
                bias = torch.randn(n, generator=g) if M % 2 else None
                ref = x.double() @ w64.T + (bias.double() if bias is not None else 0)
                for path in ("auto", "fused"):
                    with PathEnv(path):
                        poison(M * n * 2)
                        y = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k, None if bias is None else bias.cuda())
                    err = rel_err(y, ref)
                    assert err < bound, f"{fmt} {dtype} M={M} k={k} {path}: rel err {err:.3g}"


def _child(args, **env):
    """Runs `python args...` in the tests folder with extra environment variables (the
    switches rocq reads once per process)."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, *args], env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=600, cwd=os.path.dirname(os.path.abspath(__file__)))


def _check_fused_call(f, qw, sc, n: int, k: int, x: torch.Tensor, bias: torch.Tensor, bits: int = 15) -> None:
    """qmatmul on the fused path (ROCQ_QMATMUL_PATH=fused) of CPU x [M, k] (16-bit) and bias
    against fp64 references on the GPU: the output poisoned first; two calls agree bit for bit;
    y matches x rounded to `bits`-bit fixed point (_fixed_point_x) up to the output rounding
    (fp16 1e-3, bf16 6e-3), and exact x within TOL; inf in the last row of x makes that row
    non-finite and leaves the others finite."""
    M, dtype = x.shape[0], x.dtype
    w64 = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double()
    with PathEnv("fused"):
        poison(M * n * 2)
        y = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k, bias.cuda())
        y2 = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k, bias.cuda())
    assert torch.equal(y, y2), (f.name, M)
    b64 = bias.double().cuda()
    err = rel_err(y, _fixed_point_x(x, bits).cuda() @ w64.T + b64)
    assert err < {torch.float16: 1e-3, torch.bfloat16: 6e-3}[dtype], (f.name, dtype, M, err)
    assert rel_err(y, x.double().cuda() @ w64.T + b64) < TOL[dtype], (f.name, dtype, M)
    xi = x.clone()
    xi[M - 1, k - 3] = float("inf")
    with PathEnv("fused"):
        yi = rocq.qmatmul(xi.cuda(), qw, sc, f.id, n, k)
    assert not torch.isfinite(yi[M - 1]).all(), f.name  # (inf times a zero weight is NaN: not all are inf)
    assert torch.isfinite(yi[:M - 1]).all(), f.name


def _bad_rows_in_child(fmt: str, n: str, k: int, seed: int, poison: str, ms, **env) -> None:
    """In a child process with the environment variables env: weights of `fmt` [n, k] (n: an
    expression of sms, the multiprocessor count), `poison` (statements that break the rows in the
    list `bad`: non-number codes, NaN scales), then for each M in ms: every output of a bad row is
    not finite, every other one is, and matches the fp64 reference of the dequantized weights."""
    code = (
        "import torch, rocq\n"
        "from test_gpu import rel_err, TOL\n"
        f"f = rocq.format_info({fmt!r})\n"
        "sms = torch.cuda.get_device_properties(0).multi_processor_count\n"
        f"n, k = {n}, {k}\n"
        f"g = torch.Generator(device='cuda').manual_seed({seed})\n"
        "qw, sc = rocq.quantize(torch.randn(n, k, generator=g, device='cuda'), f.id)\n"
        f"{poison}\n"
        "w = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double()\n"
        "good = torch.ones(n, dtype=torch.bool); good[bad] = False\n"
        f"for M in {tuple(ms)!r}:\n"
        "    x = torch.randn(M, k, generator=g, device='cuda').bfloat16()\n"
        "    y = rocq.qmatmul(x, qw, sc, f.id, n, k)\n"
        "    assert not torch.isfinite(y[:, bad]).any(), y[:, bad]\n"
        "    assert torch.isfinite(y[:, good]).all()\n"
        "    r = x.double() @ w.T\n"
        "    assert rel_err(y[:, good], r[:, good]) < TOL[torch.bfloat16]\n"
        "print('ok')\n"
    )
    r = _child(["-c", code], ROCQ_QMATMUL_PATH="fused", **env)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


def _cases_in_child(module: str, func: str, cases, **env) -> None:
    """module.func(*case) for each case in `cases` (plain values: dtypes by name), in a child
    process with the environment variables env (the switches rocq reads once per process)."""
    code = (
        "import torch\n"
        f"from {module} import {func}\n"
        f"for case in {list(cases)!r}:\n"
        f"    {func}(*case)\n"
        "print('ok')\n"
    )
    r = _child(["-c", code], **env)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


# Formats with integer pieces (kernels/qdot_int.h PieceInt).
INT_FORMATS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs",
               "mxfp4", "ocp_mxfp4", "ocp_mxint8"]
# Formats the streaming kernel runs: those and the OCP FP6/FP8 ones, whose elements it decodes to
# fp32 and multiplies by the same fixed-point x (kernels/qdot_int.h kStreamFloat).
STREAM_FORMATS = INT_FORMATS + ["ocp_mxfp6_e2m3", "ocp_mxfp6_e3m2", "ocp_mxfp8_e4m3", "ocp_mxfp8_e5m2"]


def test_piece_kernels_when_matrix_units_off():
    """ROCQ_QMMA=0 (read once per process, so in a child process) keeps the piece kernels for
    M = 2..8 of the matrix-unit formats: still right."""
    code = (
        "import torch, rocq\n"
        "g = torch.Generator().manual_seed(3)\n"
        "for name in %r:\n"
        "    f = rocq.format_info(name); n, k = 77, 2048\n"  # 16-byte rows for every format
        "    qw, sc = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)\n"
        "    sc = sc if sc.numel() else None\n"
        "    w = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double().cpu()\n"
        "    for dt in (torch.float16, torch.bfloat16):\n"
        "        for M in (2, 5, 8):\n"
        "            x = torch.randn(M, k, generator=g).to(dt)\n"
        "            y = rocq.qmatmul(x.cuda(), qw, sc, f.id, n, k).double().cpu()\n"
        "            r = x.double() @ w.T\n"
        "            e = float((y - r).norm() / r.norm())\n"
        "            assert e < 1e-2, (name, dt, M, e)\n"
        "print('ok')\n" % (QMMA_FORMATS,)
    )
    r = _child(["-c", code], ROCQ_QMMA="0", ROCQ_QMATMUL_PATH="fused")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


def _fixed_point_x(x: torch.Tensor, bits: int = 15) -> torch.Tensor:
    """x as the integer decode path rounds it (kernels/qdot_int.h): per 32-element block,
    xq = round-half-even(x * 2^e) clamped to +-(2^bits - 1) with e = bits - frexp(max |x|).exponent;
    returns xq * 2^-e in fp64 (zero blocks stay zero). bits = 14: the integer matrix-unit kernel's
    rounding (kernels/qimma_stream.h)."""
    xb = x.double().cpu().reshape(x.shape[0], -1, 32)
    amax = xb.abs().amax(-1, keepdim=True)
    _, ex = torch.frexp(amax)
    e = torch.where(amax > 0, bits - ex, torch.zeros_like(ex)).double()
    lim = 2 ** bits - 1
    q = torch.round(xb * torch.exp2(e)).clamp(-lim, lim)  # torch.round: half to even
    return (q * torch.exp2(-e)).reshape(x.shape)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_qmatmul_integer_path(fmt, dtype):
    """16-bit x on the formats with integer pieces: x is rounded to 16-bit fixed point per
    32-element block (documented rule, emulated here), then the products are exact. Outliers,
    a zero block and a block of tiny values included; a case where only the fixed-point rounding
    explains the result (so the integer path, not another kernel, ran); inf in x gives
    non-finite outputs."""
    f = rocq.format_info(fmt)
    n, k = 301, 2048  # rows of 16-byte vectors for every format: the fast kernels take them
    assert (k // f.block_elems * f.block_bytes) % 16 == 0
    g = torch.Generator(device="cpu").manual_seed(11)
    qw, sc = rocq.quantize(torch.randn(n, k, generator=g).cuda(), f.id)
    sc = sc if f.scale_plane else None
    w64 = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double().cpu()
    x = torch.randn(5, k, generator=g)
    x[1, 37] = 900.0       # an outlier: its block's other elements lose low bits
    x[2, 96:128] *= 1e-3   # a block of small values: exact after its own scaling
    x[3, 64:96] = 0.0      # an all-zero block
    x = x.to(dtype)
    # one row of x per call: from M = 2..5 the matrix-unit kernel (test_qmatmul_matrix_units)
    # takes most of these formats on NVIDIA (kernels/qmma.hip qmma_first_rows)
    with PathEnv("fused"):
        poison(5 * n * 2)
        y = torch.cat([rocq.qmatmul(x[i:i + 1].cuda(), qw, sc, f.id, n, k) for i in range(5)])
    ref_fixed = _fixed_point_x(x) @ w64.T
    ref = x.double() @ w64.T
    # against the fixed-point x: only the output rounding to fp16/bf16 remains
    assert rel_err(y, ref_fixed) < {torch.float16: 1e-3, torch.bfloat16: 6e-3}[dtype]
    assert rel_err(y, ref) < TOL[dtype]
    # the documented bound: each element within 2^-15 of its block's max |x|
    xb, fb = x.double().reshape(5, -1, 32), _fixed_point_x(x).reshape(5, -1, 32)
    assert ((xb - fb).abs() <= xb.abs().amax(-1, keepdim=True) * 2.0**-15).all()
    # The integer path really ran: an outlier of 30000 makes its block's fixed-point step 1, so
    # the block's other elements lose their fractions. On the outputs whose weight at the
    # outlier is exactly zero that loss is a few % of y, far above the output rounding, and y
    # follows the fixed-point reference, not the exact one (as the fp32 pieces or the matrix
    # units would). Formats with an exact zero level only (the others' rounding error is swamped
    # by the outlier's own product: there the bounds above are the check).
    if fmt in ("q4_0", "q5_0", "q8_0", "q6_k", "q3_k", "mxfp4", "ocp_mxfp4", "ocp_mxint8"):
        wz = torch.randn(n, k, generator=g)
        wz[::2, 40] = 0.0  # quantizes to an exact zero in these formats
        qz, sz = rocq.quantize(wz.cuda(), f.id)
        sz = sz if f.scale_plane else None
        wz64 = rocq.dequantize(qz, sz, f.id, n, k, torch.float32).double().cpu()
        rows = (wz64[:, 40] == 0).nonzero().flatten()
        assert len(rows) >= n // 2
        xo = torch.randn(1, k, generator=g)
        xo[0, 40] = 30000.0
        xo = xo.to(dtype)
        with PathEnv("fused"):
            yo = rocq.qmatmul(xo.cuda(), qz, sz, f.id, n, k).double().cpu()[0, rows]
        r_fixed, r_exact = (_fixed_point_x(xo) @ wz64.T)[0, rows], (xo.double() @ wz64.T)[0, rows]
        gap = (r_fixed - r_exact).norm()
        assert gap > 0.01 * r_fixed.norm()  # the data does what this check needs
        assert (yo - r_fixed).norm() < 0.25 * gap
    x[4, 500] = float("inf")
    with PathEnv("fused"):
        y = torch.cat([rocq.qmatmul(x[i:i + 1].cuda(), qw, sc, f.id, n, k) for i in range(5)])
    assert not torch.isfinite(y[4]).any() and torch.isfinite(y[:4]).all()


def _q4k_layer(rng, n=96, k=512):
    f = rocq.format_info("q4_k")
    qw, sc, w = finite_weight(f, n, k, rng)
    return qw.cuda(), w, n, k


@pytest.mark.parametrize("op", ["qmatmul", "dequantize"])
def test_opcheck_cuda(op, rng):
    qw, w, n, k = _q4k_layer(rng)
    qid = rocq.qtype("q4_k")
    if op == "qmatmul":
        for M in (1, 5, 40):
            x = torch.randn(M, k, device="cuda")
            torch.library.opcheck(torch.ops.rocq.qmatmul.default, (x, qw, None, qid, n, k, torch.randn(n, device="cuda")))
    else:
        torch.library.opcheck(torch.ops.rocq.dequantize.default, (qw, None, qid, n, k, torch.bfloat16))


@pytest.mark.parametrize("M", [1, 4, 64])
def test_cuda_graph_capture_replay(M, rng):
    qw, w, n, k = _q4k_layer(rng)
    qid = rocq.qtype("q4_k")
    x = torch.randn(M, k, device="cuda", dtype=torch.bfloat16)
    rocq.qmatmul(x, qw, None, qid, n, k)  # warm up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        rocq.qmatmul(x, qw, None, qid, n, k)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        y = rocq.qmatmul(x, qw, None, qid, n, k)
    for _ in range(3):
        x.copy_(torch.randn(M, k, device="cuda", dtype=torch.bfloat16))
        g.replay()
        torch.cuda.synchronize()
        ref = x.double().cpu() @ w.double().T
        assert rel_err(y, ref) < TOL[torch.bfloat16]


def test_compile_reduce_overhead(rng):
    qw, w, n, k = _q4k_layer(rng)
    qid = rocq.qtype("q4_k")

    def f(x):
        return torch.nn.functional.silu(rocq.qmatmul(x, qw, None, qid, n, k)) * 2

    cf = torch.compile(f, mode="reduce-overhead", fullgraph=True)
    for M in (1, 1, 1, 3):
        x = torch.randn(M, k, device="cuda", dtype=torch.float16)
        torch.testing.assert_close(cf(x), f(x), rtol=2e-3, atol=2e-3)


def test_mismatched_devices_gpu():
    qw, w, n, k = _q4k_layer(np.random.default_rng(0))
    with pytest.raises((ValueError, RuntimeError), match="device|cpu"):
        rocq.qmatmul(torch.randn(2, k), qw, None, "q4_k", n, k)
    with pytest.raises((ValueError, RuntimeError), match="device|cpu"):
        rocq.qmatmul(torch.randn(2, k, device="cuda"), qw, None, "q4_k", n, k, torch.randn(n))


def test_quantize_on_gpu_roundtrip(rng):
    if not any(x.can_quantize for x in rocq.formats() if x.name == "q8_0"):
        pytest.skip("no q8_0 quantizer in this build")
    w = torch.randn(16, 64, device="cuda")
    qw, sc = rocq.quantize(w, "q8_0")
    assert qw.device.type == "cuda"
    qc, _ = rocq.quantize(w.cpu(), "q8_0")
    assert torch.equal(qw.cpu(), qc)
