"""rocq.quantize on the GPU (kernels/quantize.hip) against the CPU reference (csrc/cpu).

Both run the same per-block quantizers (kernels/quantize_blocks.h), so the bytes must be
IDENTICAL, not merely close: every format rocq can quantize, Gaussian, heavy-tailed,
all-zero, tiny/huge and NaN/inf rows, odd shapes; the planar OCP MX formats in both scale
modes (internal op rocq::_quantize_mx); capture in a CUDA graph (the op never syncs with the
host). Skipped when no GPU is present.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rocq

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

FORMATS = [f for f in rocq.formats() if f.can_quantize]
IDS = [f.name for f in FORMATS]
MX = [f for f in FORMATS if f.scale_plane]


def shapes(fmt):
    """(n, k): n odd; k several blocks, not a power of two (dense: odd k)."""
    if fmt.block_elems == 1:
        return [(7, 37), (13, 96)]
    return [(7, 3 * fmt.block_elems), (13, 5 * fmt.block_elems), (1, fmt.block_elems)]


def weights(kind: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauss":
        return rng.standard_normal((n, k)).astype(np.float32)
    if kind == "t3":  # heavy-tailed (Student-t, 3 degrees of freedom)
        return rng.standard_t(3, (n, k)).astype(np.float32)
    if kind == "cauchy":
        return rng.standard_t(1, (n, k)).astype(np.float32)
    if kind == "zero":
        return np.zeros((n, k), np.float32)
    if kind == "scales":  # each row at its own magnitude, from fp32 subnormal-ish to huge
        e = rng.uniform(-120, 120, (n, 1))
        with np.errstate(over="ignore", under="ignore"):
            return (rng.standard_normal((n, k)) * np.exp2(e)).astype(np.float32)
    if kind == "special":
        w = rng.standard_normal((n, k)).astype(np.float32)
        m = rng.uniform(size=(n, k))
        w[m < 0.03] = np.nan
        w[(m >= 0.03) & (m < 0.05)] = np.inf
        w[(m >= 0.05) & (m < 0.07)] = -np.inf
        w[(m >= 0.07) & (m < 0.1)] = 3.0e38
        w[(m >= 0.1) & (m < 0.12)] = 1e-40  # fp32 subnormal
        w[0] = 0.0
        if n > 1:
            w[1] = np.nan
        return w
    if kind == "bits":  # every fp32 bit pattern is fair game
        return rng.integers(0, 2**32, (n, k), dtype=np.uint64).astype(np.uint32).view(np.float32)
    raise ValueError(kind)


KINDS = ["gauss", "t3", "cauchy", "zero", "scales", "special", "bits"]


def assert_same(a, b, what):
    qa, sa = a
    qb, sb = b
    assert qa.device.type == "cuda" and sa.device.type == "cuda", what
    assert qa.dtype == torch.uint8 and qa.shape == qb.shape, what
    assert sa.shape == sb.shape, what
    qa, sa = qa.cpu(), sa.cpu()
    if not torch.equal(qa, qb):
        bad = (qa != qb).nonzero()
        raise AssertionError(f"{what}: {bad.shape[0]} qweight bytes differ, first at {bad[0].tolist()}")
    assert torch.equal(sa, sb), f"{what}: scales differ"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_gpu_bytes_equal_cpu(fmt, kind, rng):
    for n, k in shapes(fmt):
        w = torch.from_numpy(weights(kind, n, k, rng))
        assert_same(rocq.quantize(w.cuda(), fmt.name), rocq.quantize(w, fmt.name), f"{fmt.name} {kind} {n}x{k}")


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_gpu_bytes_equal_cpu_larger(fmt, rng):
    # A realistic block count (thousands of threads, many CTAs), mixed distributions per row.
    n = 96
    k = max(fmt.block_elems, 32) * 16
    w = np.concatenate([weights(kind, n // 6, k, rng) for kind in ("gauss", "t3", "cauchy", "scales", "special",
                                                                    "gauss")])
    w = torch.from_numpy(w)
    assert_same(rocq.quantize(w.cuda(), fmt.name), rocq.quantize(w, fmt.name), fmt.name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", ["q4_k", "q8_0", "iq4_xs", "ocp_mxfp4", "f16"])
def test_gpu_low_precision_and_strided_input(name, dtype, rng):
    w = torch.from_numpy(weights("t3", 9, 512, rng)).to(dtype)
    assert_same(rocq.quantize(w.cuda(), name), rocq.quantize(w, name), f"{name} {dtype}")
    wt = torch.from_numpy(weights("gauss", 512, 9, rng)).t()  # non-contiguous view [9, 512]
    assert_same(rocq.quantize(wt.cuda(), name), rocq.quantize(wt.contiguous(), name), f"{name} transposed")


@pytest.mark.parametrize("mode", [0, 1], ids=["spec", "even"])
@pytest.mark.parametrize("fmt", MX, ids=[f.name for f in MX])
def test_gpu_quantize_mx_modes_equal_cpu(fmt, mode, rng):
    op = torch.ops.rocq._quantize_mx.default
    for kind in KINDS:
        w = torch.from_numpy(weights(kind, 11, 32 * 7, rng))
        got = op(w.cuda(), fmt.id, mode)
        assert_same(got, op(w, fmt.id, mode), f"{fmt.name} mode={mode} {kind}")
    if mode == 0:  # the public op is the spec mode
        assert_same(rocq.quantize(w.cuda(), fmt.name), op(w, fmt.id, 0), f"{fmt.name} public")


def test_gpu_grid_stride_loop():
    # More blocks than one launch grid covers (2^20 CTAs x 64 threads = 2^26 threads): the
    # kernel's grid-stride loop must reach every block. Dense bf16: one block per element.
    n, k = 4099, 16416  # 67.3M elements > 2^26
    g = torch.Generator().manual_seed(0)
    w = torch.randn(n, k, generator=g)
    q, _ = rocq.quantize(w.cuda(), "bf16")
    ref, _ = rocq.quantize(w, "bf16")
    assert torch.equal(q.cpu(), ref)


def test_gpu_quantize_captured_in_cuda_graph(rng):
    n, k = 33, 512
    static_w = torch.from_numpy(weights("t3", n, k, rng)).cuda()
    for name in ("q4_k", "ocp_mxfp6_e2m3", "q5_1"):
        rocq.quantize(static_w, name)  # warm up outside the capture
        torch.cuda.synchronize()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            rocq.quantize(static_w, name)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            q, sc = rocq.quantize(static_w, name)
        for kind in ("gauss", "special", "cauchy"):
            new = torch.from_numpy(weights(kind, n, k, rng))
            static_w.copy_(new.cuda())
            g.replay()
            torch.cuda.synchronize()
            assert_same((q, sc), rocq.quantize(new, name), f"{name} graph replay {kind}")


def test_gpu_quantize_errors():
    with pytest.raises(ValueError, match="not a multiple of the block size 256"):
        rocq.quantize(torch.randn(2, 300, device="cuda"), "q4_k")
    with pytest.raises(ValueError, match="unknown qtype 77"):
        torch.ops.rocq.quantize(torch.randn(4, 256, device="cuda"), 77)
    with pytest.raises(ValueError, match="2-D"):
        rocq.quantize(torch.randn(256, device="cuda"), "q4_k")
    with pytest.raises(ValueError, match="unknown scale mode"):
        torch.ops.rocq._quantize_mx.default(torch.randn(2, 64, device="cuda"), rocq.qtype("ocp_mxfp4"), 5)
    with pytest.raises(ValueError, match="not a planar OCP MX format"):
        torch.ops.rocq._quantize_mx.default(torch.randn(2, 64, device="cuda"), rocq.qtype("q8_0"), 0)
