"""GPU tests of the streaming decode kernel (kernels/qmatvec_stream.h: M = 1, 2 rows of 16-bit x,
weights staged through shared memory by persistent CTAs): every format it runs, both row counts,
the switches that force it on or off (in child processes, as rocq reads them once per process),
its shapes and stage counts, the E8M0 scale plane of the OCP formats, and FP8's special codes.
Helpers and tolerances: test_gpu.py. Skipped when no GPU is present."""
from __future__ import annotations

import pytest
import torch

import rocq
from test_gpu import (STREAM_FORMATS, TOL, PathEnv, _bad_rows_in_child, _cases_in_child, _check_fused_call, _child,
                      _fast_blocks, rel_err)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def _stream_case(fmt: str, dtype, M: int = 1, units: int = 0, groups_per_cta: int = 4) -> None:
    """One call of M = 1 or 2 rows shaped for the streaming kernel (kernels/qmatvec_stream.h:
    weights staged through shared memory, persistent CTAs walking 8- or 16-row groups), checked against
    an fp64 reference on the GPU: n of more than 4 8-row groups per resident CTA (so CTAs walk
    several groups, the stage ring wraps across groups) and not a multiple of 8 (a partial last
    group); k a partial number of stages (19 Q2_K blocks: 0.6 of a stage, 20 Q3_K blocks: 1.25);
    bias, an outlier and a zero block in x. y matches the fixed-point reference up to the output rounding, two calls
    agree bit for bit, and inf in one row of x leaves the other row finite. Which kernel runs
    depends on ROCQ_QMV_STREAM (kernels/qmatvec_stream.hip; =3 makes it an error if not this one)."""
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    f = rocq.format_info(fmt)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n = 8 * groups_per_cta * 3 * sms + 5
    # a stage holds 128 pieces of each row: 128 units of the 32-element formats, 16 of IQ4_XS
    # (4-quad pieces), 32 of Q2_K (8-quad pieces); Q3_K, Q4_K, Q5_K, Q6_K: 64 pieces, 16 units;
    # Q8_0's and OCP MXINT8's stages are so large that x must stay small to fit
    units = units or {"q6_k": 20, "q3_k": 20, "q2_k": 19, "q8_0": 130 if M == 1 else 40,
                      "ocp_mxint8": 132 if M == 1 else 40}.get(
        fmt, 37 if f.block_elems == 256 else 300)
    k = f.block_elems * _fast_blocks(f, units)
    gc = torch.Generator(device="cuda").manual_seed(13)
    qw, sc = rocq.quantize(torch.randn(n, k, generator=gc, device="cuda"), f.id)
    sc = sc if f.scale_plane else None
    g = torch.Generator(device="cpu").manual_seed(13)
    x = torch.randn(M, k, generator=g)
    x[0, 37] = 700.0
    x[M - 1, 64:96] = 0.0
    _check_fused_call(f, qw, sc, n, k, x.to(dtype), torch.randn(n, generator=g))


@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fmt", STREAM_FORMATS)
def test_qmatmul_stream_kernel(fmt, dtype, M):
    """_stream_case with the kernel the launcher picks (the streaming one for most formats on this
    layer; the matrix-unit kernel for Q8_0 at M = 2)."""
    _stream_case(fmt, dtype, M)


@pytest.mark.parametrize("M", [3, 5, 8])
@pytest.mark.parametrize("fmt", ["q2_k", "q3_k"])
def test_qmatmul_stream_kernel_row_pairs(fmt, M):
    """_stream_case at M = 3..8 of Q2_K and Q3_K, which run the streaming kernel once per pair of
    rows (kernels/qmatvec.hip stream_chunked; M = 3, 5: a last single row; Q2_K at M = 8 on this
    small k: the register-blocked kernel)."""
    _stream_case(fmt, torch.bfloat16, M)


@pytest.mark.parametrize("mode", ["3", "3/16", "0"])
def test_qmatmul_stream_kernel_forced_and_off(mode):
    """_stream_case for every streaming format and M = 1, 2 with ROCQ_QMV_STREAM=3 (the
    streaming kernel for every call, ahead of the matrix-unit kernel too, and an error for a call
    it cannot take: so it really ran), with that and ROCQ_QMV_STREAM_ROWS=16 (the 16-row groups
    at M = 1 wherever they fit, which they do at these k for Q2_K .. Q6_K, OCP FP6/FP8 and the
    32-element formats' whole-block pieces: a partial last group of 5 rows, partial stages;
    MXFP4's and IQ4_XS's two-stage instance) and =0 (never), in child processes (the switches
    are read once per process)."""
    stream, _, rows = mode.partition("/")
    _stream_cases_in_child([(name, dt, M, 0, 4) for name in STREAM_FORMATS for dt in ("float16", "bfloat16")
                            for M in (1, 2)],
                           ROCQ_QMV_STREAM=stream, **({"ROCQ_QMV_STREAM_ROWS": rows} if rows else {}))


def _stream_cases_in_child(cases, **env) -> None:
    """_stream_case(name, dtype name, M, units, groups_per_cta) for each case, in a child process
    with the environment variables env."""
    _cases_in_child("test_gpu_stream", "_stream_case", cases, **env)


def test_qmatmul_stream_kernel_q2k_k4096():
    """_stream_case for Q2_K at k = 16 blocks (4096, the 8B layers') and 47 blocks (a last stage of
    15 of 16 blocks), fp16 and bf16 x, where the launcher takes Q2_K's four-set 16-row groups
    (kernels/qmatvec_stream.h SHAPE 2: shape 1's 32-block stages would leave more idle), with
    ROCQ_QMV_STREAM=3 in a child process: an error if the streaming kernel did not take the call."""
    _stream_cases_in_child([("q2_k", dt, 1, units, 4) for units in (16, 47) for dt in ("float16", "bfloat16")],
                           ROCQ_QMV_STREAM="3")


@pytest.mark.parametrize("fmt", ["ocp_mxfp8_e4m3", "ocp_mxfp8_e5m2"])
def test_qmatmul_stream_kernel_fp8_specials(fmt):
    """The streaming kernel's FP8 decode keeps the codes that are not numbers (E4M3 S.1111.111:
    NaN; E5M2 exponent 31: inf, NaN), and a NaN E8M0 scale (255) makes its row NaN: each poisoned
    row's output is not finite, every other row's is, and matches the fp64 reference. In a child
    process with ROCQ_QMV_STREAM=3 (an error if the streaming kernel did not take the call)."""
    e4m3 = fmt == "ocp_mxfp8_e4m3"
    poison = ("bad = [3, 100, n - 1]\n"
              f"qw[3, 17] = {0x7F if e4m3 else 0x7C}\n"  # NaN / +inf
              f"qw[100, 4000] = {0xFF if e4m3 else 0xFE}\n"  # -NaN / NaN
              "sc[n - 1, 2] = 255")
    _bad_rows_in_child(fmt, "8 * 3 * sms + 5", 32 * 132, 5, poison, (1,), ROCQ_QMV_STREAM="3")


def test_qmatmul_stream_kernel_scale_plane_declined():
    """The streaming kernel copies the OCP formats' E8M0 bytes 4 at a time, so it declines a scale
    plane whose rows (k / 32 bytes) are not 4-byte multiples or that starts unaligned: those calls
    run another kernel and still match fp64 (_stream_case at k / 32 = 301 and 130, and with the
    plane a view 1 byte into its storage), and with ROCQ_QMV_STREAM=3 they are an error that says
    the streaming kernel did not take them."""
    _stream_case("ocp_mxfp4", torch.bfloat16, 1, units=301)
    _stream_case("ocp_mxfp8_e4m3", torch.float16, 1, units=130)
    f = rocq.format_info("ocp_mxfp4")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n, k = 8 * 3 * sms + 5, 32 * 256
    g = torch.Generator(device="cuda").manual_seed(3)
    qw, sc = rocq.quantize(torch.randn(n, k, generator=g, device="cuda"), f.id)
    sc_view = torch.empty(n * (k // 32) + 1, dtype=torch.uint8, device="cuda")[1:].view(n, k // 32)
    sc_view.copy_(sc)
    assert sc_view.data_ptr() % 4 != 0
    x = torch.randn(1, k, generator=g, device="cuda").bfloat16()
    w = rocq.dequantize(qw, sc, f.id, n, k, torch.float32).double()
    with PathEnv("fused"):
        y = rocq.qmatmul(x, qw, sc_view, f.id, n, k)
    assert rel_err(y, x.double() @ w.T) < TOL[torch.bfloat16]
    code = (
        "import torch, rocq\n"
        "f = rocq.format_info('ocp_mxfp4')\n"
        "n, k = 8 * 3 * torch.cuda.get_device_properties(0).multi_processor_count + 5, 32 * 301\n"
        "qw, sc = rocq.quantize(torch.randn(n, k, device='cuda'), f.id)\n"
        "try:\n"
        "    rocq.qmatmul(torch.randn(1, k, device='cuda').bfloat16(), qw, sc, f.id, n, k)\n"
        "except RuntimeError as e:\n"
        "    print('raised:', e)\n"
    )
    r = _child(["-c", code], ROCQ_QMV_STREAM="3", ROCQ_QMATMUL_PATH="fused")
    assert "raised:" in r.stdout and "does not take this call" in r.stdout, (r.stdout, r.stderr[-2000:])


def test_qmatmul_stream_kernel_two_stages():
    """_stream_case at k = 28672 (the 70B FFN down layer's) for formats whose three stages and x row
    are over the kernel's shared-memory cap there (OCP MXFP6: with x as fp32, qmv_stream_xe; its
    two-stage instance keeps int16 x), and OCP MXINT8 at k = 8192 (its 32 KB stages: the E8M0
    bytes' copies in two stages), so that they run its two-stage instance
    (kernels/qmatvec_stream.hip kTwoStages), with ROCQ_QMV_STREAM=3 in a child process: an error
    if the streaming kernel did not take the call."""
    _stream_cases_in_child([(name, "bfloat16", 1, 28672 // (256 if name in ("q4_k", "q5_k") else 32), 1)
                            for name in ("q4_0", "q5_1", "q4_k", "q5_k", "iq4_nl")]
                           + [("ocp_mxint8", "bfloat16", 1, 8192 // 32, 2),
                              ("ocp_mxfp6_e2m3", "bfloat16", 1, 28672 // 32, 1)],
                           ROCQ_QMV_STREAM="3")
