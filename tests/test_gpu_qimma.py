"""GPU tests of the streaming integer matrix-unit kernel (kernels/qimma_stream.h: 1..8 rows of
16-bit x rounded to 14-bit fixed point, int8 products on the matrix units, persistent CTAs walking
16-row groups). Each case runs in a child process with ROCQ_QIMMA=3 (read once per process: the
kernel takes every call it fits, and a call it does not take is an error, so it really ran).
Helpers and tolerances: test_gpu.py. Skipped when no GPU is present."""
from __future__ import annotations

import pytest
import torch

import rocq
from test_gpu import _cases_in_child, _check_fused_call, _child, _fast_blocks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

# Formats with a byte decoder (kernels/qimma_stream.h kQiFragOn).
QIMMA_FORMATS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "iq4_nl", "iq4_xs", "mxfp4", "ocp_mxfp4"]


def _qimma_case(fmt: str, dtype, M: int, blocks: int) -> None:
    """One call of M rows against an fp64 reference on the GPU: n more than 3 16-row groups per
    multiprocessor and not a multiple of 16 (CTAs walk several groups, a partial last group); k of
    `blocks` 32-element blocks (a last stage of fewer windows than warps); bias, an outlier, a zero
    block and a block of tiny values in x; checked by _check_fused_call against x rounded to
    14-bit fixed point."""
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    f = rocq.format_info(fmt)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n = 16 * 3 * sms + 5
    k = 32 * blocks
    gc = torch.Generator(device="cuda").manual_seed(17 + M)
    qw, sc = rocq.quantize(torch.randn(n, k, generator=gc, device="cuda"), f.id)
    sc = sc if f.scale_plane else None
    g = torch.Generator(device="cpu").manual_seed(29 + M)
    x = torch.randn(M, k, generator=g)
    x[0, 37] = 700.0
    x[M - 1, 64:96] = 0.0
    x[M // 2, 128:160] *= 1e-30
    _check_fused_call(f, qw, sc, n, k, x.to(dtype), torch.randn(n, generator=g), bits=14)


@pytest.mark.parametrize("fmt", QIMMA_FORMATS)
def test_qmatmul_qimma_kernel(fmt):
    """_qimma_case for M = 1..8 (one product of 4 rows of x up to M = 4, two from 5), fp16 and
    bf16 x, k = 241 32-element blocks rounded up to whole blocks and 16-byte rows (a last stage
    of fewer windows than warps; Q4_1, Q5_1: a last window of half its blocks) and, up to M = 3, 512 blocks (k = 16384, whole
    stages), with ROCQ_QIMMA=3 (at M = 8 MXFP4's x leaves room for only two stages: that
    instance runs too)."""
    f = rocq.format_info(fmt)
    short = _fast_blocks(f, -(-241 * 32 // f.block_elems)) * f.block_elems // 32  # (in 32-element blocks)
    if f.scale_plane:
        short = -(-short // 4) * 4  # (the kernel copies the E8M0 plane in words: k % 128 == 0)
    cases = [(fmt, dt, M, blocks) for dt in ("float16", "bfloat16") for M in range(1, 9) for blocks in (short, 512)
             if M <= 3 or blocks == short]
    _cases_in_child("test_gpu_qimma", "_qimma_case", cases, ROCQ_QIMMA="3")


def test_qimma_strict_mode_reports_calls_it_does_not_take():
    """ROCQ_QIMMA=3 makes a call the kernel cannot take an error that names it, not a silent
    fallback: here a layer of fewer 16-row groups than multiprocessors."""
    code = (
        "import torch, rocq\n"
        "f = rocq.format_info('q4_0'); n, k = 64, 1024\n"
        "qw, _ = rocq.quantize(torch.randn(n, k).cuda(), f.id)\n"
        "x = torch.randn(2, k, dtype=torch.bfloat16).cuda()\n"
        "try:\n"
        "    rocq.qmatmul(x, qw, None, f.id, n, k)\n"
        "except RuntimeError as e:\n"
        "    print('raised', e)\n"
    )
    r = _child(["-c", code], ROCQ_QIMMA="3", ROCQ_QMATMUL_PATH="fused")
    assert r.returncode == 0 and "raised" in r.stdout and "ROCQ_QIMMA=3" in r.stdout, (r.stdout, r.stderr[-2000:])
