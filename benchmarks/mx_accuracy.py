"""Accuracy of rocq's OCP MX formats vs GGUF formats at similar bits per weight.

Relative RMSE ||dequantize(quantize(W)) - W||_F / ||W||_F on two synthetic weight
distributions: Gaussian, and heavy-tailed (Student-t with 3 degrees of freedom). Every format
is quantized by rocq on the CPU (GGUF formats with rocq.quantize, MX formats with
rocq.mx.quantize_mx in both scale modes).

    python benchmarks/mx_accuracy.py [--rows 1024] [--cols 4096] [--out benchmarks/results/mx_accuracy.md]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import rocq
import rocq.mx as mx

GGUF = ["q4_0", "q4_k", "iq4_xs", "mxfp4", "q5_k", "q6_k", "q8_0"]
MX = list(mx.MX_FORMATS)


def weights(kind: str, n: int, k: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        w = rng.standard_normal((n, k))
    elif kind == "student_t3":
        w = rng.standard_t(3, size=(n, k))
    else:
        raise ValueError(kind)
    return torch.from_numpy((w * 0.02).astype(np.float32))


def rel_rmse(w: torch.Tensor, name: str, mode: str | None) -> float:
    n, k = w.shape
    if mode is None:
        q, s = rocq.quantize(w, name)
        s = s if rocq.format_info(name).scale_plane else None
    else:
        q, s = mx.quantize_mx(w, name, mode)
    d = rocq.dequantize(q, s, name, n, k).double()
    return ((d - w.double()).norm() / w.double().norm()).item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "mx_accuracy.md"))
    args = ap.parse_args()
    kinds = ["gaussian", "student_t3"]
    ws = {kind: weights(kind, args.rows, args.cols, args.seed + i) for i, kind in enumerate(kinds)}
    rows = []
    t0 = time.time()
    for name in GGUF + MX:
        f = rocq.format_info(name)
        if not f.can_quantize:
            rows.append((name, f.bits_per_weight, "-", None, None))
            continue
        for mode in ([None] if name in GGUF else ["spec", "even"]):
            errs = [rel_rmse(ws[kind], name, mode) for kind in kinds]
            rows.append((name, f.bits_per_weight, mode or "-", *errs))
    rows.sort(key=lambda r: (r[1], r[0], r[2]))
    lines = [
        "# Relative RMSE of rocq formats: OCP MX vs GGUF",
        "",
        f"W: {args.rows} x {args.cols} fp32, entries 0.02 * Gaussian, and 0.02 * Student-t (3 dof, heavy tails);",
        "error = ||dequantize(quantize(W)) - W||_F / ||W||_F. All quantizers are rocq's CPU quantizers",
        "(GGUF types: `rocq.quantize`, no importance matrix; MX types: `rocq.mx.quantize_mx`,",
        "mode `spec` = OCP v1.0 floor rule, `even` = AMD Quark's rounding of amax). Bits per weight",
        "include the scales (MX: 8-bit E8M0 per 32 elements = +0.25).",
        "",
        "| format | bits/weight | scale mode | Gaussian | Student-t (3) |",
        "|---|---:|---|---:|---:|",
    ]
    for name, bpw, mode, g, t in rows:
        if g is None:
            lines.append(f"| {name} | {bpw:.3g} | {mode} | n/a | n/a |")
        else:
            lines.append(f"| {name} | {bpw:.4g} | {mode} | {g:.4f} | {t:.4f} |")
    lines += ["", f"torch {torch.__version__}, rocq {rocq.__version__}; {time.time() - t0:.0f} s on the CPU.", ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
