"""rocq's planar OCP MX formats (ocp_mxfp4 .. ocp_mxint8): element decode against the OCP
tables (ml_dtypes), E8M0 scales, the quantizer against an independent numpy reference of the
scale rules, round-trip bounds, qmatmul vs fp64, opcheck / torch.compile, GGUF mxfp4 <->
ocp_mxfp4, and loading AMD Quark checkpoints. GPU cases run where torch.cuda is available."""
from __future__ import annotations

import json
import os

import ml_dtypes
import numpy as np
import pytest
import torch

import rocq
import rocq.mx as mx
from conftest import DEVICES, rel_err

MX = list(mx.MX_FORMATS)

# name -> (element type from ml_dtypes or "int8", bits per code, emax, mantissa bits, Quark mbits, max)
SPEC = {
    "ocp_mxfp4": (ml_dtypes.float4_e2m1fn, 4, 2, 1, 1, 6.0),
    "ocp_mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 6, 2, 3, 3, 7.5),
    "ocp_mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 6, 4, 2, 2, 28.0),
    "ocp_mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 8, 3, 3, 448.0),
    "ocp_mxfp8_e5m2": (ml_dtypes.float8_e5m2, 8, 15, 2, 2, 57344.0),
    "ocp_mxint8": ("int8", 8, 0, 6, 8, 127 / 64),
}
IDS = {"ocp_mxfp4": 100, "ocp_mxfp6_e2m3": 101, "ocp_mxfp6_e3m2": 102, "ocp_mxfp8_e4m3": 103,
       "ocp_mxfp8_e5m2": 104, "ocp_mxint8": 105}


# ------------------------------------------------------------------------------------------
# Independent numpy helpers: OCP tables, packing, the reference quantizer
# ------------------------------------------------------------------------------------------
def table(name: str) -> np.ndarray:
    """float64 value of every code of the element type (NaN where the code is NaN)."""
    et, bits = SPEC[name][0], SPEC[name][1]
    codes = np.arange(1 << bits, dtype=np.uint8)
    if et == "int8":
        return codes.view(np.int8).astype(np.float64) / 64.0
    return codes.view(et).astype(np.float64)


def pack(name: str, codes: np.ndarray) -> np.ndarray:
    """codes [n, k] -> element plane [n, row_bytes] (Quark's layout)."""
    bits = SPEC[name][1]
    c = codes.astype(np.uint32)
    n, k = c.shape
    if bits == 4:
        return (c[:, 0::2] | (c[:, 1::2] << 4)).astype(np.uint8)
    if bits == 6:
        g = c.reshape(n, k // 4, 4)
        w = g[..., 0] | (g[..., 1] << 6) | (g[..., 2] << 12) | (g[..., 3] << 18)
        return np.stack([w & 255, (w >> 8) & 255, w >> 16], -1).reshape(n, -1).astype(np.uint8)
    return c.astype(np.uint8)


def unpack(name: str, plane: np.ndarray) -> np.ndarray:
    bits = SPEC[name][1]
    p = plane.astype(np.uint32)
    n = p.shape[0]
    if bits == 4:
        return np.stack([p & 15, p >> 4], -1).reshape(n, -1)
    if bits == 6:
        g = p.reshape(n, -1, 3)
        w = g[..., 0] | (g[..., 1] << 8) | (g[..., 2] << 16)
        return np.stack([(w >> (6 * j)) & 63 for j in range(4)], -1).reshape(n, -1)
    return p


def ref_decode(name: str, codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """fp64 oracle (element value * 2^(e-127), NaN for e = 255) rounded once to fp32."""
    vals = table(name)[codes]
    e = np.repeat(scales.astype(np.int64), 32, axis=1)
    out = vals * np.exp2((e - 127).astype(np.float64))
    out[e == 255] = np.nan
    with np.errstate(over="ignore"):
        return out.astype(np.float32)


def ref_encode(name: str, x: np.ndarray) -> np.ndarray:
    """Nearest code (ties to the even code) of every scaled value x (finite), saturating, sign kept."""
    et, bits, _, _, _, vmax = SPEC[name]
    a = np.minimum(np.abs(x), vmax)
    if et == "int8":
        m = np.minimum(np.rint(a * 64.0), 127).astype(np.int64)  # np.rint: ties to even
        return np.where(np.signbit(x), -m, m).astype(np.int8).view(np.uint8).astype(np.uint32)
    mags = table(name)[: 1 << (bits - 1)]  # non-negative codes 0..; NaN codes only above max
    finite = np.where(np.isfinite(mags) & (mags <= vmax))[0]
    grid = mags[finite]
    d = np.abs(a[..., None] - grid)
    best = d.min(-1, keepdims=True)
    # among equally near codes (a tie) take the one with an even code
    score = np.where(d == best, 0, 2) + (finite & 1)
    code = finite[np.argmin(score.reshape(-1, len(finite)), axis=-1)].reshape(a.shape).astype(np.uint32)
    return code | (np.signbit(x).astype(np.uint32) << (bits - 1))


def ref_quantize(name: str, w: np.ndarray, mode: str = "spec"):
    """Straightforward numpy reference of the MX quantizer (see csrc/cpu/quantize_mx.h)."""
    _, bits, emax, _, qmbits, _ = SPEC[name]
    n, k = w.shape
    blocks = w.astype(np.float32).reshape(n, k // 32, 32)
    codes = np.zeros(blocks.shape, np.uint32)
    scales = np.zeros((n, k // 32), np.uint8)
    fmax = np.float32(np.finfo(np.float32).max)
    for i in range(n):
        for b in range(k // 32):
            v = blocks[i, b]
            if np.isnan(v).any():
                scales[i, b] = 255
                continue
            v = np.clip(v, -fmax, fmax)
            amax = np.float32(np.abs(v).max())
            if mode == "spec":
                s = -127 if amax == 0 else int(np.frexp(np.float64(amax))[1] - 1) - emax
            else:  # Quark "even": integer round of the fp32 bits at qmbits, keep the exponent
                if amax == 0:
                    s = -126 - emax
                else:
                    eb = ((int(amax.view(np.uint32)) + (1 << (22 - qmbits))) & 0x7F800000) >> 23
                    s = -10**9 if eb == 0 else (10**9 if eb == 255 else eb - 127 - emax)
            s = min(max(s, -127), 127)
            scales[i, b] = s + 127
            c = ref_encode(name, v.astype(np.float64) / 2.0**s)
            if mode == "even" and SPEC[name][0] != "int8":  # Quark writes +0 (INT8 has no -0)
                c = np.where((c & ((1 << (bits - 1)) - 1)) == 0, 0, c)
            codes[i, b] = c
    return codes.reshape(n, k), scales


def quantize(name, w, mode="spec"):
    q, s = mx.quantize_mx(torch.as_tensor(w), name, mode)
    return unpack(name, q.numpy()), s.numpy()


def bits_equal(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    same = (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))
    assert same.all(), f"{(~same).sum()} of {same.size} differ; first at {np.argwhere(~same)[0]}: " \
                       f"{a[tuple(np.argwhere(~same)[0])]} vs {b[tuple(np.argwhere(~same)[0])]}"


# ------------------------------------------------------------------------------------------
# Format table
# ------------------------------------------------------------------------------------------
def test_format_table():
    for name, fid in IDS.items():
        f = rocq.format_info(name)
        bits = SPEC[name][1]
        assert f.id == fid and rocq.qtype(fid) == fid and f.scale_plane
        assert (f.block_elems, f.block_bytes) == (32, 32 * bits // 8)
        assert f.bits_per_weight == bits + 0.25
        assert mx.is_mx(name) and mx.is_mx(fid)
    assert rocq.qtype("mxfp4") == 39 and not mx.is_mx("mxfp4")


# ------------------------------------------------------------------------------------------
# Decode: every code of every element type, every interesting E8M0 byte
# ------------------------------------------------------------------------------------------
SCALE_BYTES = [0, 1, 2, 100, 126, 127, 128, 200, 253, 254, 255]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MX)
def test_decode_every_code_and_scale(name, device):
    ncodes = 1 << SPEC[name][1]
    codes = np.tile(np.arange(ncodes, dtype=np.uint32), max(1, 32 // ncodes))
    nb = len(codes) // 32
    codes = np.tile(codes, (len(SCALE_BYTES), 1))  # one row per scale byte
    scales = np.repeat(np.array(SCALE_BYTES, np.uint8)[:, None], nb, axis=1)
    qw = torch.from_numpy(pack(name, codes)).to(device)
    sc = torch.from_numpy(scales).to(device)
    n, k = codes.shape
    out = rocq.dequantize(qw, sc, name, n, k).cpu().numpy()
    bits_equal(out, ref_decode(name, codes, scales))
    # scale byte 127 = 1.0: the element table itself (ml_dtypes), signed zeros and NaNs included
    bits_equal(out[SCALE_BYTES.index(127)], table(name)[codes[0]].astype(np.float32))


def test_e8m0_values():
    vals = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
    codes = np.zeros((256, 32), np.uint32)
    codes[:, 0] = 0x38  # E4M3 1.0
    out = rocq.dequantize(torch.from_numpy(pack("ocp_mxfp8_e4m3", codes)),
                          torch.arange(256, dtype=torch.uint8)[:, None], "ocp_mxfp8_e4m3", 256, 32).numpy()
    bits_equal(out[:, 0], vals)
    assert out[0, 0] == 2.0**-127 and out[127, 0] == 1.0 and out[254, 0] == 2.0**127 and np.isnan(out[255]).all()
    assert (out[:255, 1:] == 0).all()


def test_packing_is_quarks():
    # fp4: element 2i in the LOW nibble; fp6: little-endian 24-bit word v0 | v1<<6 | v2<<12 | v3<<18
    q = torch.zeros(1, 16, dtype=torch.uint8)
    q[0, 0] = 0x72  # element 0 = code 2 (1.0), element 1 = code 7 (6.0)
    out = rocq.dequantize(q, torch.full((1, 1), 127, dtype=torch.uint8), "ocp_mxfp4", 1, 32)
    assert out[0, :3].tolist() == [1.0, 6.0, 0.0]
    w = 0x08 | (0x10 << 6) | (0x3F << 12) | (0x01 << 18)  # E2M3 codes: 1.0, 2.0, -7.5, 0.125
    q = torch.zeros(1, 24, dtype=torch.uint8)
    q[0, :3] = torch.tensor([w & 255, (w >> 8) & 255, w >> 16])
    out = rocq.dequantize(q, torch.full((1, 1), 127, dtype=torch.uint8), "ocp_mxfp6_e2m3", 1, 32)
    assert out[0, :5].tolist() == [1.0, 2.0, -7.5, 0.125, 0.0]


# ------------------------------------------------------------------------------------------
# Quantize vs the numpy reference
# ------------------------------------------------------------------------------------------
def special_blocks(name: str, rng) -> np.ndarray:
    """Rows of 32: zeros, -0, one huge outlier, denormal range, fp32 subnormals, exact ties,
    values at and just past the saturation point, tiny negatives that round to -0."""
    _, bits, emax, _, _, vmax = SPEC[name]
    g = rng.standard_normal(32).astype(np.float32)
    rows = [np.zeros(32), -np.zeros(32), np.r_[g[:31], 1e30], g * 1e-39, g * 1e-44, g * 3e38,
            g * 2.0**-130, np.r_[-1e-3 * np.abs(g[:31]), 4.0]]
    grid = table(name)[: 1 << (bits - 1)]
    grid = np.unique(grid[np.isfinite(grid) & (grid <= vmax)])
    mids = (grid[1:] + grid[:-1]) / 2  # exact ties between neighbouring codes
    t = rng.choice(np.r_[mids, -mids], 31)
    rows.append(np.r_[t, grid[-1]] * 2.0**-3)  # the block max fixes the scale to (grid max) * 2^-3 ...
    rows.append(np.r_[t * 0.999, 2.0**(emax + 1) * 0.999])  # spec: saturates; even: next scale
    rows.append(np.r_[t * 1.001, -(2.0**(emax + 1)) * 0.9])
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("mode", ["spec", "even"])
@pytest.mark.parametrize("name", MX)
def test_quantize_matches_reference(name, mode, rng):
    n, k = 5, 96
    w = rng.standard_normal((n, k)).astype(np.float32)  # blocks of very different magnitudes
    w *= np.exp2(rng.integers(-20, 20, size=(n, k // 32, 1))).repeat(32, -1).reshape(n, k)
    with np.errstate(over="ignore"):
        special = special_blocks(name, rng)  # [m, 32]: one block per row
    for data in (w, special):
        codes, scales = quantize(name, data, mode)
        rc, rs = ref_quantize(name, data, mode)
        np.testing.assert_array_equal(scales, rs)
        bad = codes != rc
        assert not bad.any(), f"{bad.sum()} codes differ; first {np.argwhere(bad)[0]}: rocq {codes[bad][0]} " \
                              f"ref {rc[bad][0]} for x={data[bad][0]!r}"


def test_quantize_special_values():
    name = "ocp_mxfp4"
    w = np.zeros((4, 32), np.float32)
    w[1] = -0.0
    w[2, 3] = np.nan
    w[3, :] = 1.0
    w[3, 5] = np.inf
    codes, scales = quantize(name, w)
    assert scales[0, 0] == 0 and (codes[0] == 0).all()  # all-zero block: E8M0 byte 0
    assert scales[1, 0] == 0 and (codes[1] == 8).all()  # -0 keeps its sign (spec mode)
    assert scales[2, 0] == 255 and (codes[2] == 0).all()  # NaN: the whole block is NaN
    # +inf saturates as FLT_MAX: scale 2^(127-2), the inf element gets the max code, others flush
    assert scales[3, 0] == 127 + 125 and codes[3, 5] == 7 and (np.delete(codes[3], 5) == 0).all()
    d = rocq.dequantize(*mx.quantize_mx(torch.from_numpy(w), name), name, 4, 32)
    assert torch.isnan(d[2]).all() and not torch.isnan(d[[0, 1, 3]]).any()
    assert d[3, 5] == 6 * 2.0**125
    codes_e, _ = quantize(name, w, "even")
    assert (codes_e[1] == 0).all()  # even (Quark) mode writes +0


# ------------------------------------------------------------------------------------------
# Round trip bounds and accuracy
# ------------------------------------------------------------------------------------------
RMSE_MAX = {"ocp_mxfp4": 0.13, "ocp_mxfp6_e2m3": 0.035, "ocp_mxfp6_e3m2": 0.065, "ocp_mxfp8_e4m3": 0.04,
            "ocp_mxfp8_e5m2": 0.065, "ocp_mxint8": 0.012}


@pytest.mark.parametrize("mode", ["spec", "even"])
@pytest.mark.parametrize("name", MX)
def test_round_trip_bound(name, mode, rng):
    _, _, emax, mbits, qmbits, vmax = SPEC[name]
    n, k = 16, 256
    w = torch.from_numpy((rng.standard_normal((n, k)) * np.exp2(rng.integers(-30, 30, (n, 1)))).astype(np.float32))
    q, s = mx.quantize_mx(w, name, mode)
    d = rocq.dequantize(q, s, name, n, k)
    scale = torch.exp2(s.double() - 127).repeat_interleave(32, 1)
    # per element: half a quantum of the top binade, or the gap between the largest scaled amax
    # the scale rule allows and the largest element value (those values saturate)
    half_q = 2.0 ** (emax - mbits - 1) if name != "ocp_mxint8" else 0.5 / 64
    top = 2.0 ** (emax + 1) if mode == "spec" else (2 - 2.0 ** -(qmbits + 1)) * 2.0**emax
    bound = scale * max(half_q, top - vmax)
    assert ((d.double() - w.double()).abs() <= bound).all()
    assert rel_err(d, w) < RMSE_MAX[name]
    # quantize(dequantize(q)) is the identity on representable values
    q2, s2 = mx.quantize_mx(d, name, "spec")
    assert torch.equal(rocq.dequantize(q2, s2, name, n, k), d)


def test_public_quantize_is_spec_mode(rng):
    w = torch.from_numpy(rng.standard_normal((8, 64)).astype(np.float32))
    for name in MX:
        if not rocq.format_info(name).can_quantize:
            pytest.skip("rocq.quantize is not wired to the MX quantizer in this build (quantize_gguf.cpp)")
        q, s = rocq.quantize(w, name)
        q2, s2 = mx.quantize_mx(w, name, "spec")
        assert torch.equal(q, q2) and torch.equal(s, s2)


# ------------------------------------------------------------------------------------------
# qmatmul vs fp64, opcheck, compile
# ------------------------------------------------------------------------------------------
TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MX)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("lead,n,k", [((1,), 7, 32), ((3,), 33, 160), ((2, 5), 64, 96)])
def test_qmatmul_vs_fp64(name, dtype, lead, n, k, device, rng):
    w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
    q, s = mx.quantize_mx(w, name)
    q, s = q.to(device), s.to(device)
    wd = rocq.dequantize(q, s, name, n, k).double().cpu()
    x = torch.randn(*lead, k, dtype=torch.float64).to(dtype)
    b = torch.randn(n, dtype=torch.float64).to(dtype)
    y = rocq.qmatmul(x.to(device), q, s, name, n, k, b.to(device))
    assert y.dtype == dtype and y.shape == (*lead, n)
    ref = x.double() @ wd.T + b.double()
    assert rel_err(y, ref) < TOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MX)
def test_opcheck(name, device, rng):
    n, k = 9, 64
    w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
    q, s = mx.quantize_mx(w, name)
    q, s = q.to(device), s.to(device)
    x = torch.randn(3, k, device=device, requires_grad=True)
    b = torch.randn(n, device=device, requires_grad=True)
    fid = rocq.qtype(name)
    torch.library.opcheck(torch.ops.rocq.qmatmul.default, (x, q, s, fid, n, k, b))
    torch.library.opcheck(torch.ops.rocq.qmatmul.default, (x.detach().half(), q, s, fid, n, k, None))
    torch.library.opcheck(torch.ops.rocq.dequantize.default, (q, s, fid, n, k, torch.bfloat16))
    if device == "cpu":
        torch.library.opcheck(torch.ops.rocq._quantize_mx.default, (w, fid, 1))
        if rocq.format_info(name).can_quantize:
            torch.library.opcheck(torch.ops.rocq.quantize.default, (w, fid))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph(device, rng):
    from rocq.nn import QuantLinear

    n, k = 64, 128
    w1 = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
    w2 = torch.from_numpy(rng.standard_normal((n, n)).astype(np.float32))
    layers = torch.nn.Sequential(
        QuantLinear.from_quantized(*mx.quantize_mx(w1, "ocp_mxfp4"), "ocp_mxfp4", k, n),
        torch.nn.ReLU(),
        QuantLinear.from_quantized(*mx.quantize_mx(w2, "ocp_mxfp6_e3m2"), "ocp_mxfp6_e3m2", n, n),
    ).to(device)
    torch._dynamo.reset()
    compiled = torch.compile(layers, fullgraph=True, dynamic=True)
    for m in (1, 5):
        x = torch.randn(m, k, device=device)
        torch.testing.assert_close(compiled(x), layers(x), rtol=1e-5, atol=1e-5)


def test_quantize_mx_under_compile(rng):
    w = torch.from_numpy(rng.standard_normal((4, 64)).astype(np.float32))
    f = torch.compile(lambda t: mx.quantize_mx(t, "ocp_mxfp8_e4m3", "even"), fullgraph=True)
    q, s = f(w)
    q2, s2 = mx.quantize_mx(w, "ocp_mxfp8_e4m3", "even")
    assert torch.equal(q, q2) and torch.equal(s, s2)


# ------------------------------------------------------------------------------------------
# GGUF mxfp4 (id 39) <-> ocp_mxfp4 (id 100)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_gguf_mxfp4_conversion_lossless(device, rng):
    n, nb = 7, 5
    k = nb * 32
    g = rng.integers(0, 256, size=(n, nb, 17), dtype=np.uint8)
    g[:, :, 0] = rng.integers(0, 255, size=(n, nb))  # e = 255 decodes differently (see rocq.mx)
    g[0, 0, 0], g[0, 1, 0], g[1, 0, 0] = 0, 1, 254
    gq = torch.from_numpy(g.reshape(n, -1)).to(device)
    oq, os_ = mx.gguf_mxfp4_to_ocp(gq)
    assert oq.shape == (n, k // 2) and os_.shape == (n, nb) and oq.device == gq.device
    # equal values (ggml's integer table decodes code 8 as +0 where OCP E2M1 has -0)
    assert torch.equal(rocq.dequantize(oq, os_, "ocp_mxfp4", n, k), rocq.dequantize(gq, None, "mxfp4", n, k))
    assert torch.equal(mx.ocp_to_gguf_mxfp4(oq, os_), gq)
    # the other way round, with every byte value (e = 255 included: bytes are carried unchanged)
    oq2 = torch.from_numpy(rng.integers(0, 256, size=(n, k // 2), dtype=np.uint8)).to(device)
    os2 = torch.from_numpy(rng.integers(0, 256, size=(n, nb), dtype=np.uint8)).to(device)
    back = mx.gguf_mxfp4_to_ocp(mx.ocp_to_gguf_mxfp4(oq2, os2))
    assert torch.equal(back[0], oq2) and torch.equal(back[1], os2)
    with pytest.raises(ValueError):
        mx.gguf_mxfp4_to_ocp(torch.zeros(2, 18, dtype=torch.uint8, device=device))


def test_gguf_mxfp4_matches_gguf_py(rng):
    gguf = pytest.importorskip("gguf")
    from gguf import quants

    n, k = 3, 64
    oq = torch.from_numpy(rng.integers(0, 256, size=(n, k // 2), dtype=np.uint8))
    os_ = torch.from_numpy(rng.integers(100, 140, size=(n, k // 32), dtype=np.uint8))
    g = mx.ocp_to_gguf_mxfp4(oq, os_)
    ref = quants.dequantize(g.numpy(), gguf.GGMLQuantizationType.MXFP4).astype(np.float32)
    np.testing.assert_array_equal(rocq.dequantize(oq, os_, "ocp_mxfp4", n, k).numpy(), ref)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------
def test_bad_input():
    w = torch.randn(4, 64)
    with pytest.raises(ValueError, match="not a planar OCP MX format"):
        mx.quantize_mx(w, "q4_0")
    with pytest.raises(ValueError, match="unknown scale mode"):
        mx.quantize_mx(w, "ocp_mxfp4", "ceil")
    with pytest.raises(ValueError, match="multiple of the block size 32"):
        mx.quantize_mx(torch.randn(4, 48), "ocp_mxfp4")
    q, s = mx.quantize_mx(w, "ocp_mxfp4")
    with pytest.raises(ValueError, match="E8M0 scale plane"):
        rocq.dequantize(q, None, "ocp_mxfp4", 4, 64)
    with pytest.raises(ValueError, match=r"scales must have shape \[n, k/32\]"):
        rocq.dequantize(q, s[:, :1], "ocp_mxfp4", 4, 64)
    with pytest.raises(ValueError, match="qweight must have shape"):
        rocq.dequantize(q, s, "ocp_mxfp6_e2m3", 4, 64)


# ------------------------------------------------------------------------------------------
# AMD Quark checkpoints
# ------------------------------------------------------------------------------------------
QUARK_DTYPE = {"ocp_mxfp4": "fp4", "ocp_mxfp6_e2m3": "fp6_e2m3", "ocp_mxfp6_e3m2": "fp6_e3m2",
               "ocp_mxfp8_e4m3": "fp8_e4m3", "ocp_mxfp8_e5m2": "fp8_e5m2", "ocp_mxint8": "int8"}


def _tiny_llama():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def _write_quark_checkpoint(path, model, name, exclude=("lm_head",)):
    """A checkpoint in the documented Quark export layout, written with rocq's "even" quantizer
    (which is byte-identical to Quark's for fp4/fp6; fp8/int8 follow the same layout)."""
    from safetensors.torch import save_file

    tensors = {}
    for key, t in model.state_dict().items():
        mod = key.rpartition(".")[0]
        if key.endswith(".weight") and isinstance(model.get_submodule(mod), torch.nn.Linear) and mod not in exclude:
            q, s = mx.quantize_mx(t.float(), name, "even")
            tensors[key], tensors[key + "_scale"] = q, s
        else:
            tensors[key] = t.contiguous()
    save_file(tensors, str(path / "model.safetensors"))
    model.config.save_pretrained(str(path))
    cfg = json.loads((path / "config.json").read_text())
    wspec = {"dtype": QUARK_DTYPE[name], "qscheme": "per_group", "group_size": 32, "scale_format": "e8m0",
             "ch_axis": -1, "is_dynamic": False, "scale_calculation_mode": "even", "round_method": "half_even",
             "observer_cls": "PerBlockMXObserver", "mx_element_dtype": None}
    cfg["quantization_config"] = {
        "quant_method": "quark", "exclude": list(exclude), "layer_quant_config": {}, "layer_type_quant_config": {},
        "global_quant_config": {"weight": wspec, "input_tensors": None, "output_tensors": None, "bias": None},
        "export": {"pack_method": "reorder", "weight_format": "real_quantized"}, "version": "0.13"}
    (path / "config.json").write_text(json.dumps(cfg))


def _logits_vs_fp64(model, ids):
    import copy

    from rocq.nn import QuantLinear

    ref = copy.deepcopy(model)
    for name, mod in list(ref.named_modules()):
        if isinstance(mod, QuantLinear):
            parent, _, child = name.rpartition(".")
            setattr(ref.get_submodule(parent) if parent else ref, child, mod.to_linear(torch.float32))
    ref = ref.double()
    with torch.no_grad():
        return model(ids).logits, ref(ids).logits


@pytest.mark.parametrize("name", MX)
def test_quark_checkpoint_load(name, tmp_path):
    from rocq.nn import QuantLinear

    import rocq.quark as rq

    model = _tiny_llama()
    _write_quark_checkpoint(tmp_path, model, name)
    # rocq.from_pretrained recognises the Quark export and routes it to load_quark
    loaded = rocq.from_pretrained(str(tmp_path), dtype=torch.float32) if name == "ocp_mxfp4" else \
        rq.load_quark(str(tmp_path), dtype=torch.float32)
    qls = {n: m for n, m in loaded.named_modules() if isinstance(m, QuantLinear)}
    assert len(qls) == 14 and "lm_head" not in qls
    sd = model.state_dict()
    for n, m in qls.items():  # the stored bytes, unchanged
        q, s = mx.quantize_mx(sd[n + ".weight"].float(), name, "even")
        assert m.qtype == rocq.qtype(name) and torch.equal(m.qweight, q) and torch.equal(m.scales, s)
    ids = torch.tensor([[1, 5, 7, 9, 50, 3]])
    y, y64 = _logits_vs_fp64(loaded, ids)
    assert rel_err(y, y64) < 1e-4
    # close to the unquantized model (a sanity check that the layers are wired right)
    with torch.no_grad():
        assert rel_err(y, model(ids).logits) < {"ocp_mxfp4": 0.3}.get(name, 0.1)


def test_quark_config_errors(tmp_path):
    import rocq.quark as rq

    assert rq.weight_format({"dtype": "fp4", "qscheme": "per_group", "group_size": 32, "scale_format": "e8m0",
                             "ch_axis": -1}) == "ocp_mxfp4"
    assert rq.weight_format({"dtype": "mx", "mx_element_dtype": "fp6_e3m2", "qscheme": "per_group",
                             "group_size": 32, "scale_format": "e8m0", "ch_axis": -1}) == "ocp_mxfp6_e3m2"
    with pytest.raises(rq.QuarkFormatError, match="not an OCP MX format"):
        rq.weight_format({"dtype": "int4", "qscheme": "per_group", "group_size": 128}, "x")
    qc = {"quant_method": "quark", "exclude": ["*lm_head"], "global_quant_config": {"weight": {"dtype": "fp4"}},
          "layer_quant_config": {"*.mlp.*": {"weight": {"dtype": "fp6_e2m3"}}}}
    assert rq.layer_config(qc, "lm_head") is None
    assert rq.layer_config(qc, "model.layers.0.mlp.up_proj")["weight"]["dtype"] == "fp6_e2m3"
    assert rq.layer_config(qc, "model.layers.0.self_attn.q_proj")["weight"]["dtype"] == "fp4"


@pytest.mark.skipif(os.environ.get("ROCQ_TEST_QUARK") != "1",
                    reason="needs amd-quark and ~45 s; set ROCQ_TEST_QUARK=1 to run")
def test_quark_real_export(tmp_path):
    """amd-quark quantizes + exports a tiny model itself; rocq loads it, and rocq's "even"
    quantizer reproduces Quark's bytes exactly (checked with amd-quark 0.13, fp4)."""
    pytest.importorskip("quark.torch")
    import logging

    from quark.torch import ModelQuantizer, export_safetensors
    from quark.torch.quantization.config.config import OCP_MXFP4Spec, QConfig, QLayerConfig
    from safetensors.torch import load_file

    import rocq.quark as rq

    model = _tiny_llama()
    orig = {k: v.clone() for k, v in model.state_dict().items()}
    qc = QConfig(global_quant_config=QLayerConfig(weight=OCP_MXFP4Spec(ch_axis=-1, is_dynamic=False)
                                                  .to_quantization_spec()), exclude=["lm_head"])
    logging.disable(logging.WARNING)
    try:
        model = ModelQuantizer(qc).quantize_model(model, None)
        export_safetensors(model, str(tmp_path))
    finally:
        logging.disable(logging.NOTSET)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    nq = 0
    for key, t in tensors.items():
        if key.endswith(".weight_scale"):
            base = key[: -len("_scale")]
            q, s = mx.quantize_mx(orig[base].float(), "ocp_mxfp4", "even")
            assert torch.equal(tensors[base], q) and torch.equal(t, s), base
            nq += 1
    assert nq == 14
    loaded = rq.load_quark(str(tmp_path), dtype=torch.float32)
    y, y64 = _logits_vs_fp64(loaded, torch.tensor([[1, 2, 3, 4]]))
    assert rel_err(y, y64) < 1e-4
