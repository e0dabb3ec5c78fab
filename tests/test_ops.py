"""The three rocq ops on every format: bit-exact dequantize against gguf-py, qmatmul against an
fp64 reference, opcheck, torch.compile, autograd and bad input. Parametrised over devices: the
GPU cases run where torch.cuda is available and are skipped otherwise."""
from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import quants

import rocq
from conftest import DEVICES, E8M0_FIELDS, HALF_FIELDS, gguf_formats, rel_err, valid_qweight

GGUF = gguf_formats()
GGUF_IDS = [f.name for f in GGUF]

# Tolerances for qmatmul vs an fp64 reference of the same (dequantized) weight and the same x.
# fp32 x: fp32 accumulation only. fp16/bf16 x: y is rounded once to x's dtype (relative
# 2^-11 / 2^-8 per element), plus whatever reduced-precision workspace a GPU path uses.
TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def gguf_dequant(qw: torch.Tensor, fmt: rocq.Format) -> np.ndarray:
    return quants.dequantize(qw.cpu().numpy(), gguf.GGMLQuantizationType(fmt.id)).astype(np.float32)


def assert_bits_equal(out: np.ndarray, ref: np.ndarray):
    same = (out.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(out) & np.isnan(ref))
    assert same.all(), f"{(~same).sum()} of {same.size} elements differ, first at {np.argwhere(~same)[0]}"


# ------------------------------------------------------------------------------------------
# dequantize
# ------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt", GGUF, ids=GGUF_IDS)
@pytest.mark.parametrize("n,blocks", [(1, 1), (7, 3), (33, 5)])
def test_dequantize_random_bytes_bit_exact(fmt, n, blocks, device, rng):
    """Arbitrary bytes (NaN/inf/subnormal scales included) decode exactly as gguf-py does."""
    k = blocks * max(fmt.block_elems, 32)
    qw = torch.from_numpy(rng.integers(0, 256, size=(n, fmt.row_bytes(k)), dtype=np.uint8))
    out = rocq.dequantize(qw.to(device), None, fmt.id, n, k)
    assert out.dtype == torch.float32 and out.shape == (n, k)
    assert_bits_equal(out.cpu().numpy(), gguf_dequant(qw, fmt))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt", [f for f in GGUF if f.name in HALF_FIELDS or f.name in E8M0_FIELDS],
                         ids=lambda f: f.name)
def test_dequantize_extreme_scales(fmt, device, rng):
    """Scale fields set to fp16 subnormals, the fp16 max, +-0 (E8M0: 0, 1, 127, 254, 255)."""
    n, k = 6, 2 * fmt.block_elems
    qw, _ = valid_qweight(fmt, n, k, rng)
    b = qw.numpy().reshape(n, -1, fmt.block_bytes).copy()
    extremes = np.array([0x0001, 0x03FF, 0x7BFF, 0x8000, 0x0000, 0xFBFF], dtype=np.uint16)  # per row
    for off in HALF_FIELDS.get(fmt.name, ()):
        b[:, :, off:off + 2] = extremes.view(np.uint8).reshape(n, 1, 2)
    for off in E8M0_FIELDS.get(fmt.name, ()):
        b[:, :, off] = np.array([0, 1, 127, 254, 255, 2], dtype=np.uint8).reshape(n, 1)
    qw = torch.from_numpy(b.reshape(n, -1))
    out = rocq.dequantize(qw.to(device), None, fmt.id, n, k).cpu().numpy()
    assert_bits_equal(out, gguf_dequant(qw, fmt))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", GGUF, ids=GGUF_IDS)
def test_dequantize_dtypes(fmt, dtype, device, rng):
    """Non-fp32 outputs are the fp32 decode rounded once."""
    n, k = 5, 3 * max(fmt.block_elems, 32)
    qw, sc = valid_qweight(fmt, n, k, rng)
    ref = rocq.dequantize(qw, sc, fmt.id, n, k, torch.float32).to(dtype)
    out = rocq.dequantize(qw.to(device), sc, fmt.id, n, k, dtype)
    assert out.dtype == dtype and torch.equal(out.cpu(), ref)


# ------------------------------------------------------------------------------------------
# qmatmul
# ------------------------------------------------------------------------------------------
def reference(x, qw, sc, fmt, n, k, bias=None):
    w = rocq.dequantize(qw.cpu(), sc, fmt.id, n, k).double()
    y = x.cpu().double() @ w.T
    return y + bias.cpu().double() if bias is not None else y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", GGUF, ids=GGUF_IDS)
@pytest.mark.parametrize("lead,n,blocks", [((1,), 1, 1), ((3,), 37, 3), ((2, 5), 19, 5), ((67,), 45, 2)])
def test_qmatmul_vs_fp64(fmt, dtype, lead, n, blocks, device, rng):
    k = blocks * max(fmt.block_elems, 32) + (8 if fmt.block_elems == 1 else 0)  # dense: odd-ish k
    qw, sc = valid_qweight(fmt, n, k, rng)
    x = torch.from_numpy(rng.standard_normal((*lead, k)).astype(np.float32)).to(dtype)
    bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32)).to(dtype)
    y = rocq.qmatmul(x.to(device), qw.to(device), sc, fmt.id, n, k, bias.to(device))
    assert y.shape == (*lead, n) and y.dtype == dtype and y.device.type == device
    assert rel_err(y, reference(x, qw, sc, fmt, n, k, bias)) < TOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
def test_qmatmul_empty_batch_and_noncontiguous(device, rng):
    fmt = rocq.format_info("q4_k")
    n, k = 24, 512
    qw, sc = valid_qweight(fmt, n, k, rng)
    qw = qw.to(device)
    empty = rocq.qmatmul(torch.empty(0, k, device=device), qw, None, fmt.id, n, k)
    assert empty.shape == (0, n)
    xt = torch.from_numpy(rng.standard_normal((k, 6)).astype(np.float32)).to(device).T  # non-contiguous
    assert not xt.is_contiguous()
    assert rel_err(rocq.qmatmul(xt, qw, None, fmt.id, n, k), reference(xt, qw, sc, fmt, n, k)) < 1e-4
    wide = torch.zeros(n, 2 * fmt.row_bytes(k), dtype=torch.uint8, device=device)
    wide[:, ::2] = qw  # a strided (non-contiguous) view of the right shape
    assert rel_err(rocq.qmatmul(xt, wide[:, ::2], None, fmt.id, n, k), reference(xt, qw, sc, fmt, n, k)) < 1e-4


# ------------------------------------------------------------------------------------------
# torch.library integration: opcheck, compile, autograd
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["q4_0", "q4_k", "q6_k", "iq4_xs", "mxfp4", "bf16"])
def test_opcheck(name, device, rng):
    fmt = rocq.format_info(name)
    n, k = 9, 2 * max(fmt.block_elems, 32)
    qw, sc = valid_qweight(fmt, n, k, rng)
    qw = qw.to(device)
    x = torch.randn(3, k, device=device, requires_grad=True)
    b = torch.randn(n, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.rocq.qmatmul.default, (x, qw, sc, fmt.id, n, k, b))
    torch.library.opcheck(torch.ops.rocq.qmatmul.default, (x.detach().half(), qw, sc, fmt.id, n, k, None))
    torch.library.opcheck(torch.ops.rocq.dequantize.default, (qw, sc, fmt.id, n, k, torch.bfloat16))
    torch.library.opcheck(torch.ops.rocq.quantize.default, (torch.randn(n, k, device=device), fmt.id))


@pytest.mark.parametrize("device", DEVICES)
def test_autograd_matches_dequantized_linear(device, rng):
    fmt = rocq.format_info("q5_k")
    n, k = 13, 256
    qw, _ = valid_qweight(fmt, n, k, rng)
    qw = qw.to(device)
    w = rocq.dequantize(qw, None, fmt.id, n, k)
    x = torch.randn(2, 4, k, device=device, dtype=torch.float64).float().requires_grad_()
    b = torch.randn(n, device=device, requires_grad=True)
    g = torch.randn(2, 4, n, device=device)
    rocq.qmatmul(x, qw, None, fmt.id, n, k, b).backward(g)
    x2, b2 = x.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    F.linear(x2, w, b2).backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.grad, b2.grad, rtol=1e-5, atol=1e-5)


class _Layer(torch.nn.Module):
    def __init__(self, qw, qtype, n, k):
        super().__init__()
        self.register_buffer("qw", qw)
        self.qtype, self.n, self.k = qtype, n, k

    def forward(self, x):
        return torch.relu(rocq.qmatmul(x, self.qw, None, self.qtype, self.n, self.k)) * 2


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_eager(device, rng):
    fmt = rocq.format_info("q4_k")
    n, k = 40, 512
    qw, _ = valid_qweight(fmt, n, k, rng)
    layer = _Layer(qw.to(device), fmt.id, n, k)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, dynamic=True)
    for m in (1, 3, 17):  # several batch sizes: one dynamic graph, no errors
        x = torch.randn(m, k, device=device)
        torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------
# Bad input: the error type and a message naming the problem, never a crash.
# ------------------------------------------------------------------------------------------
def _q4k(n=4, k=256):
    fmt = rocq.format_info("q4_k")
    return fmt, torch.randint(0, 255, (n, fmt.row_bytes(k)), dtype=torch.uint8), n, k


def test_bad_qtype():
    fmt, qw, n, k = _q4k()
    with pytest.raises(ValueError, match="unknown qtype 77"):
        torch.ops.rocq.dequantize(qw, None, 77, n, k, torch.float32)
    with pytest.raises(ValueError, match="unknown qtype 77"):
        torch.ops.rocq.qmatmul(torch.randn(2, k), qw, None, 77, n, k)
    with pytest.raises(ValueError, match="unknown qtype -1"):
        torch.ops.rocq.quantize(torch.randn(4, 256), -1)


def test_k_not_multiple_of_block():
    fmt, qw, n, _ = _q4k()
    with pytest.raises(ValueError, match="k=300 is not a multiple of the block size 256 of format q4_k"):
        rocq.dequantize(qw, None, "q4_k", n, 300)
    with pytest.raises(ValueError, match="k=100 is not a multiple of the block size 32 of format q4_0"):
        rocq.quantize(torch.randn(3, 100), "q4_0")


def test_wrong_byte_count():
    fmt, qw, n, k = _q4k()
    with pytest.raises(ValueError, match=r"qweight must have shape \[n, k / 256 \* 144\] = \[4, 144\]"):
        rocq.qmatmul(torch.randn(2, k), qw[:, :-1], None, "q4_k", n, k)
    with pytest.raises(ValueError, match="qweight must have shape"):
        rocq.dequantize(qw, None, "q4_k", n + 1, k)


def test_wrong_dtypes():
    fmt, qw, n, k = _q4k()
    with pytest.raises(TypeError, match="qweight must be uint8"):
        rocq.dequantize(qw.to(torch.int8), None, "q4_k", n, k)
    with pytest.raises(TypeError, match="x must be float32, float16 or bfloat16, got Double"):
        rocq.qmatmul(torch.randn(2, k, dtype=torch.float64), qw, None, "q4_k", n, k)
    with pytest.raises(TypeError, match="x must be float32, float16 or bfloat16"):
        rocq.qmatmul(torch.ones(2, k, dtype=torch.int32), qw, None, "q4_k", n, k)
    with pytest.raises(TypeError, match="dtype must be float32, float16 or bfloat16"):
        rocq.dequantize(qw, None, "q4_k", n, k, torch.int64)


def test_wrong_shapes():
    fmt, qw, n, k = _q4k()
    with pytest.raises(ValueError, match=r"x must have shape \[..., k\] with k=256"):
        rocq.qmatmul(torch.randn(2, 128), qw, None, "q4_k", n, k)
    with pytest.raises(ValueError, match=r"bias must have shape \[n\] = \[4\]"):
        rocq.qmatmul(torch.randn(2, k), qw, None, "q4_k", n, k, torch.randn(5))
    with pytest.raises(ValueError, match="keeps its scales inside the blocks"):
        rocq.qmatmul(torch.randn(2, k), qw, torch.ones(4, 8, dtype=torch.uint8), "q4_k", n, k)
    with pytest.raises(ValueError, match="n and k must be positive"):
        rocq.dequantize(qw, None, "q4_k", 0, k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_mismatched_devices():
    fmt, qw, n, k = _q4k()
    with pytest.raises((ValueError, RuntimeError), match="x is on cuda.* but qweight is on cpu|device"):
        rocq.qmatmul(torch.randn(2, k, device="cuda"), qw, None, "q4_k", n, k)
    with pytest.raises((ValueError, RuntimeError), match="bias is on|device"):
        rocq.qmatmul(torch.randn(2, k), qw, None, "q4_k", n, k, torch.randn(n, device="cuda"))
