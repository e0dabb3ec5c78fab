"""Shared fixtures and generators for rocq's tests.

`valid_qweight` makes random but well-formed weight bytes for any format without using rocq's
quantizers (so decode and matmul are tested independently of them): random payload bytes,
with every scale field overwritten by a finite random value of a chosen size.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import rocq

# Byte offsets of the fp16 scale fields (d, dmin) inside one block, per GGUF format
# (FORMATS.md, "fields in order"). E8M0 formats list their exponent byte separately.
HALF_FIELDS = {
    "q4_0": (0,), "q4_1": (0, 2), "q5_0": (0,), "q5_1": (0, 2), "q8_0": (0,),
    "q2_k": (80, 82), "q3_k": (108,), "q4_k": (0, 2), "q5_k": (0, 2), "q6_k": (208,),
    "iq4_nl": (0,), "iq4_xs": (0,),
}
E8M0_FIELDS = {"mxfp4": (0,)}
DENSE = {"f32": np.float32, "f16": np.float16, "bf16": None}

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gguf_formats():
    return [f for f in rocq.formats() if not f.scale_plane]


def valid_qweight(fmt: rocq.Format, n: int, k: int, rng: np.random.Generator, scale=(1e-3, 2e-2)):
    """uint8 [n, row_bytes] of random well-formed blocks, plus scales (None for GGUF types)."""
    if fmt.name in DENSE:
        w = rng.standard_normal((n, k)).astype(np.float32)
        if fmt.name == "f32":
            return torch.from_numpy(w.view(np.uint8).reshape(n, -1).copy()), None
        if fmt.name == "f16":
            return torch.from_numpy(w.astype(np.float16).view(np.uint8).reshape(n, -1).copy()), None
        bits = (w.view(np.uint32) >> 16).astype(np.uint16)
        return torch.from_numpy(bits.view(np.uint8).reshape(n, -1).copy()), None
    nb = k // fmt.block_elems
    b = rng.integers(0, 256, size=(n, nb, fmt.block_bytes), dtype=np.uint8)
    for off in HALF_FIELDS.get(fmt.name, ()):
        d = rng.uniform(*scale, size=(n, nb)).astype(np.float16)
        b[:, :, off:off + 2] = d.view(np.uint8).reshape(n, nb, 2)
    for off in E8M0_FIELDS.get(fmt.name, ()):
        b[:, :, off] = rng.integers(118, 127, size=(n, nb), dtype=np.uint8)
    scales = None
    if fmt.scale_plane:
        scales = torch.from_numpy(rng.integers(118, 127, size=(n, k // 32), dtype=np.uint8))
    return torch.from_numpy(b.reshape(n, -1)), scales


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double().cpu(), ref.double().cpu()
    assert torch.isfinite(out).all(), "output has non-finite values"
    return ((out - ref).norm() / ref.norm()).item()


@pytest.fixture
def rng(request):
    # A test-specific seed: different tests draw different data, and every run of a test draws
    # the same (crc32, not hash(): str hashes change per process with PYTHONHASHSEED).
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
