"""rocq.quantize for the GGUF formats (csrc/cpu/quantize_*.cpp), checked through the public ops.

* Our bytes are valid GGUF: gguf-py's dequantizer and rocq.dequantize agree bit for bit.
* Error (relative RMSE of dequantize(quantize(w)) - w) is no worse than gguf-py's own quantizer
  for every type gguf-py can quantize, and below a stated per-format bound for all types, on
  Gaussian and heavy-tailed (Student-t, 3 dof) data.
* Edge cases: all-zero rows, outliers, tiny/huge/non-finite values, odd shapes, bad qtypes.
"""
from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from gguf import quants

import rocq

# Relative RMSE bounds per format on (Gaussian, Student-t 3 dof) data of the sizes used below.
# Measured values are about 10-20% lower; they sit at the level of an exhaustive scale search for
# each block structure (e.g. uniform 4-bit codes on 32 Gaussian values with a free affine fit:
# ~0.069 - Q4_K reaches 0.070 with its 6-bit sub-scales), so the bounds catch regressions, not noise.
BOUND = {
    "q4_0": (0.090, 0.145), "q4_1": (0.077, 0.105), "q5_0": (0.045, 0.075), "q5_1": (0.037, 0.050),
    "q8_0": (0.0055, 0.0095), "mxfp4": (0.122, 0.160),
    "q2_k": (0.285, 0.330), "q3_k": (0.158, 0.210), "q4_k": (0.077, 0.105), "q5_k": (0.038, 0.052),
    "q6_k": (0.0182, 0.0280), "iq4_nl": (0.081, 0.114), "iq4_xs": (0.081, 0.115),
    "f16": (3e-4, 3e-4), "bf16": (2.3e-3, 2.3e-3), "f32": (0.0, 0.0),
}
DISTS = ("gauss", "t3")


def gguf_quant_formats():
    return [f for f in rocq.formats() if not f.scale_plane and f.can_quantize]


FORMATS = gguf_quant_formats()
FMT_IDS = [f.name for f in FORMATS]
QUANTIZED = [f for f in FORMATS if f.block_elems > 1]


def sample(dist: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if dist == "gauss":
        return rng.standard_normal((n, k)).astype(np.float32)
    return rng.standard_t(3, (n, k)).astype(np.float32)


def ttype(fmt) -> gguf.GGMLQuantizationType:
    return gguf.GGMLQuantizationType(fmt.id)


def ours(w: np.ndarray, fmt):
    """(qweight bytes as numpy, rocq's fp32 dequantization as numpy)."""
    n, k = w.shape
    q, s = rocq.quantize(torch.from_numpy(w), fmt.name)
    assert q.dtype == torch.uint8 and tuple(q.shape) == (n, fmt.row_bytes(k))
    assert s.numel() == 0
    d = rocq.dequantize(q, None, fmt.name, n, k, torch.float32)
    return q.numpy(), d.numpy()


def gguf_dequant(qb: np.ndarray, fmt, n: int, k: int) -> np.ndarray:
    return np.asarray(quants.dequantize(qb, ttype(fmt)), dtype=np.float32).reshape(n, k)


def rel_rmse(a: np.ndarray, w: np.ndarray) -> float:
    a64, w64 = a.astype(np.float64), w.astype(np.float64)
    return float(np.sqrt(np.mean((a64 - w64) ** 2) / np.mean(w64 ** 2)))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def gguf_py_quantize(w: np.ndarray, fmt):
    """gguf-py's own bytes, or None where it has no quantizer for the type."""
    try:
        return np.asarray(quants.quantize(w, ttype(fmt)))
    except NotImplementedError:
        return None


# ---------------------------------------------------------------------------------------------
# bit-exact against gguf-py, and error vs gguf-py / bounds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_bytes_decode_like_gguf_py_and_error_bounds(fmt, dist, rng):
    n, k = 48, 1024
    w = sample(dist, n, k, rng)
    qb, deq = ours(w, fmt)
    ref = gguf_dequant(qb, fmt, n, k)
    assert same_bits(deq, ref), f"{fmt.name}: rocq.dequantize disagrees with gguf-py on our bytes"
    assert np.isfinite(deq).all()
    err = rel_rmse(deq, w)
    bound = BOUND[fmt.name][DISTS.index(dist)]
    assert err <= bound, f"{fmt.name} ({dist}): relative RMSE {err:.5f} above the bound {bound}"
    gq = gguf_py_quantize(w, fmt)
    if gq is not None:
        gerr = rel_rmse(gguf_dequant(gq, fmt, n, k), w)
        # Every block's candidates include gguf-py's scale and the choice is made on the exact
        # decode error, so no block is worse; the slack only covers summation order.
        assert err <= gerr * (1 + 1e-6), f"{fmt.name} ({dist}): ours {err:.6f} > gguf-py {gerr:.6f}"


@pytest.mark.parametrize("fmt", QUANTIZED, ids=[f.name for f in QUANTIZED])
def test_odd_shapes(fmt, rng):
    # n odd, k several blocks but not a power of two.
    for n, nblocks in ((7, 3), (3, 5), (1, 1)):
        k = nblocks * fmt.block_elems
        w = sample("gauss", n, k, rng)
        qb, deq = ours(w, fmt)
        assert same_bits(deq, gguf_dequant(qb, fmt, n, k)), f"{fmt.name} n={n} k={k}"
        assert rel_rmse(deq, w) <= 1.5 * BOUND[fmt.name][0]


# ---------------------------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", QUANTIZED, ids=[f.name for f in QUANTIZED])
def test_zero_rows_and_zero_blocks(fmt, rng):
    n, k = 5, 4 * fmt.block_elems
    w = sample("gauss", n, k, rng)
    w[1] = 0.0                                   # an all-zero row
    w[3, fmt.block_elems:2 * fmt.block_elems] = 0.0  # one all-zero block inside a row
    w[4, :fmt.block_elems] = 1e-30               # a block far below fp16 resolution (-> 0)
    qb, deq = ours(w, fmt)
    assert same_bits(deq, gguf_dequant(qb, fmt, n, k))
    assert np.isfinite(deq).all()
    assert (deq[1] == 0).all()
    assert (deq[3, fmt.block_elems:2 * fmt.block_elems] == 0).all()
    if fmt.name == "mxfp4":  # E8M0 scales reach 2^-127: the block is represented, not dropped
        assert np.abs(deq[4, :fmt.block_elems] - 1e-30).max() <= 0.25e-30
    else:
        assert (deq[4, :fmt.block_elems] == 0).all()
    rows = [0, 2]
    assert rel_rmse(deq[rows], w[rows]) <= 1.5 * BOUND[fmt.name][0]


@pytest.mark.parametrize("fmt", QUANTIZED, ids=[f.name for f in QUANTIZED])
def test_blocks_are_independent_and_outliers_stay_local(fmt, rng):
    n, k = 3, 4 * fmt.block_elems
    w = sample("gauss", n, k, rng)
    qa, _ = ours(w, fmt)
    w2 = w.copy()
    j = fmt.block_elems + 5
    w2[1, j] = 1000.0                                 # a large outlier in block 1 of row 1
    qb, deq = ours(w2, fmt)
    assert same_bits(deq, gguf_dequant(qb, fmt, n, k))
    assert np.isfinite(deq).all()
    # Only the block that holds the outlier changes.
    bb = fmt.block_bytes
    changed = [(r, b) for r in range(n) for b in range(k // fmt.block_elems)
               if not np.array_equal(qa[r, b * bb:(b + 1) * bb], qb[r, b * bb:(b + 1) * bb])]
    assert changed == [(1, 1)]
    # The outlier itself is reproduced to within a few percent (it sets its block's scale).
    assert abs(deq[1, j] - 1000.0) <= 0.1 * 1000.0


@pytest.mark.parametrize("fmt", QUANTIZED, ids=[f.name for f in QUANTIZED])
def test_nonfinite_and_huge_inputs(fmt, rng):
    """Documented in csrc/cpu/quantize_gguf.cpp: NaN -> 0, +-inf and values beyond the format's
    range saturate; the scale never becomes NaN/inf."""
    n, k = 4, 2 * fmt.block_elems
    w = sample("gauss", n, k, rng)
    w_nan, w_zero = w.copy(), w.copy()
    w_nan[0, 3], w_zero[0, 3] = np.nan, 0.0
    assert np.array_equal(ours(w_nan, fmt)[0], ours(w_zero, fmt)[0]), "NaN must quantize as 0"

    w_inf = w.copy()
    w_inf[1, 2], w_inf[1, fmt.block_elems + 1] = np.inf, -np.inf
    w_inf[2, :] = 1e30 * np.sign(w[2])           # finite but far beyond fp16 * codes
    w_inf[3, :fmt.block_elems] = 3e38
    qb, deq = ours(w_inf, fmt)
    assert same_bits(deq, gguf_dequant(qb, fmt, n, k))
    assert np.isfinite(deq).all()
    assert deq[1, 2] >= deq[1, :fmt.block_elems].max() and deq[1, 2] > 1e4
    assert deq[1, fmt.block_elems + 1] <= deq[1, fmt.block_elems:].min() and deq[1, fmt.block_elems + 1] < -1e4
    # Saturated blocks keep their signs at the extremes.
    assert (np.sign(deq[2]) * np.sign(w[2]) >= 0).all()
    assert deq[2].max() > 1e4 and deq[3, :fmt.block_elems].max() > 1e4

    # Values below fp16's normal range: finite and no worse than dropping them.
    w_small = (sample("gauss", n, k, rng) * 1e-6).astype(np.float32)
    qb, deq = ours(w_small, fmt)
    assert same_bits(deq, gguf_dequant(qb, fmt, n, k))
    assert np.isfinite(deq).all() and rel_rmse(deq, w_small) <= 1.0


def test_dense_formats_convert_like_ieee(rng):
    w = sample("gauss", 3, 64, rng) * 100
    w[0, :4] = [np.nan, np.inf, -np.inf, 1e6]  # 1e6 overflows fp16
    q16, _ = rocq.quantize(torch.from_numpy(w), "f16")
    with np.errstate(over="ignore"):
        ref16 = w.astype(np.float16)
    assert np.array_equal(q16.numpy().view(np.float16), ref16, equal_nan=True)
    qbf, _ = rocq.quantize(torch.from_numpy(w), "bf16")
    ref = np.asarray(quants.quantize(w, gguf.GGMLQuantizationType.BF16)).reshape(3, -1)
    assert np.array_equal(qbf.numpy(), ref)
    q32, _ = rocq.quantize(torch.from_numpy(w), "f32")
    assert np.array_equal(q32.numpy().view(np.uint32), w.view(np.uint32))


# ---------------------------------------------------------------------------------------------
# API behaviour
# ---------------------------------------------------------------------------------------------
def test_rows_are_independent_and_deterministic(rng):
    # The op splits rows across threads (at::parallel_for): results must not depend on the split.
    w = torch.from_numpy(sample("t3", 33, 512, rng))
    for name in ("q4_k", "q2_k", "iq4_xs", "q5_0"):
        full, _ = rocq.quantize(w, name)
        again, _ = rocq.quantize(w, name)
        parts = torch.cat([rocq.quantize(w[i:i + 1], name)[0] for i in range(w.shape[0])])
        assert torch.equal(full, again) and torch.equal(full, parts), name


def test_low_precision_input_is_widened_first(rng):
    w = torch.from_numpy(sample("gauss", 4, 256, rng))
    for dt in (torch.float16, torch.bfloat16):
        a, _ = rocq.quantize(w.to(dt), "q4_k")
        b, _ = rocq.quantize(w.to(dt).float(), "q4_k")
        assert torch.equal(a, b)


def test_unsupported_qtype_is_a_clear_error():
    w = torch.randn(4, 256)
    with pytest.raises(ValueError, match="unknown qtype 77"):
        torch.ops.rocq.quantize(w, 77)
    with pytest.raises(ValueError, match="unknown"):
        rocq.quantize(w, "q7_k")
    with pytest.raises(ValueError, match="not a multiple of the block size 256"):
        rocq.quantize(torch.randn(2, 300), "q4_k")
