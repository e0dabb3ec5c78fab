"""GPU tests of the streaming integer matrix-unit kernel (kernels/qimma_stream.h: 1..8 rows of
16-bit x rounded to 14-bit fixed point, int8 products on the matrix units, persistent CTAs walking
16-row groups). Each case runs in a child process with ROCQ_QIMMA=3 (read once per process: the
kernel takes every call it fits, and a call it does not take is an error, so it really ran).
Helpers and tolerances: test_gpu.py. Skipped when no GPU is present."""
from __future__ import annotations

import pytest
import torch

import rocq
from test_gpu import _bad_rows_in_child, _cases_in_child, _check_fused_call, _child, _fast_blocks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

# Formats with a byte decoder (kernels/qimma_stream.h kQiFragOn).
QIMMA_FORMATS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "iq4_nl", "iq4_xs", "mxfp4", "ocp_mxfp4"]


def _qimma_case(fmt: str, dtype, M: int, blocks: int) -> None:
    """One call of M rows against an fp64 reference on the GPU: n more than 3 16-row groups per
    multiprocessor and not a multiple of 16 (CTAs walk several groups, a partial last group); k of
    `blocks` 32-element blocks (_partial_blocks: a partial last stage); bias, an outlier, a zero
    block and a block 1e-30 times smaller (its own scale: nothing overflows or turns non-finite)
    in x; checked by _check_fused_call against x rounded to 14-bit fixed point."""
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


# k in 32-element blocks with a partial last stage for every format (16-byte rows; the E8M0
# plane of OCP MXFP4 in words, k % 128 == 0): 241 rounded up, but IQ4_XS 36 blocks of 256 and
# MXFP4 144 (their stages hold 8 blocks and 128); Q4_1's last window is half full, Q5_1's a quarter.
def _partial_blocks(fmt: str) -> int:
    f = rocq.format_info(fmt)
    special = {"iq4_xs": 36 * 8, "mxfp4": 144}
    if fmt in special:
        return special[fmt]
    blocks = _fast_blocks(f, -(-241 * 32 // f.block_elems)) * f.block_elems // 32
    return -(-blocks // 4) * 4 if f.scale_plane else blocks


@pytest.mark.parametrize("fmt", QIMMA_FORMATS)
def test_qmatmul_qimma_kernel(fmt):
    """_qimma_case for M = 1..8 (one product of 4 rows of x up to M = 4, two from 5), fp16 and
    bf16 x, k of _partial_blocks and, up to M = 3, 512 blocks (k = 16384, whole stages), with
    ROCQ_QIMMA=3."""
    short = _partial_blocks(fmt)
    cases = [(fmt, dt, M, blocks) for dt in ("float16", "bfloat16") for M in range(1, 9) for blocks in (short, 512)
             if M <= 3 or blocks == short]
    _cases_in_child("test_gpu_qimma", "_qimma_case", cases, ROCQ_QIMMA="3")


def test_qmatmul_qimma_kernel_two_stages_early_copies():
    """_qimma_case with ROCQ_QIMMA_STAGES=2 (the two-stage instances, one and two products of x)
    and ROCQ_QIMMA_EARLY=1 (the first copies issued before x is rounded), for a natural-order, a
    K-quant, a table and the OCP format, M = 1, 4, 5, 8, bf16 x."""
    cases = [(fmt, "bfloat16", M, _partial_blocks(fmt)) for fmt in ("q4_0", "q5_k", "mxfp4", "ocp_mxfp4")
             for M in (1, 4, 5, 8)]
    _cases_in_child("test_gpu_qimma", "_qimma_case", cases, ROCQ_QIMMA="3", ROCQ_QIMMA_STAGES="2",
                    ROCQ_QIMMA_EARLY="1")


def test_qmatmul_qimma_kernel_nan_scale():
    """An OCP MXFP4 E8M0 byte of 255 is NaN (OCP MX v1.0), so its row's output is not finite, as in
    every other kernel; the other rows are finite and match the fp64 reference. GGUF MXFP4's 255
    is ggml's 2^127, finite. In a child process with ROCQ_QIMMA=3, M = 1 and 5."""
    poison = "bad = [3, 100, n - 1]\nsc[3, 0] = 255; sc[100, 200] = 255; sc[n - 1, 243] = 255"
    _bad_rows_in_child("ocp_mxfp4", "16 * 3 * sms + 5", 32 * 244, 7, poison, (1, 5), ROCQ_QIMMA="3")


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
