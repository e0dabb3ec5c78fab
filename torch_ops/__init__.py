"""rocq: LLM weights kept quantized (GGUF block formats, OCP MX) on AMD and NVIDIA GPUs.

    import rocq
    qw, sc = rocq.quantize(w, "q4_k")                  # w [n, k] -> GGUF Q4_K bytes
    y = rocq.qmatmul(x, qw, sc, "q4_k", n, k)           # y = x @ W^T, W never materialised
    rocq.formats()                                     # every format: name, id, block, bits/weight

The ops are torch.ops.rocq.{qmatmul, dequantize, quantize}; see rocq.ops for their contracts.
"""
from __future__ import annotations

import importlib

import torch

from . import _C  # noqa: F401  (registers torch.ops.rocq.*)
from . import mx, ops  # mx: MX helpers + the fake kernel of rocq::_quantize_mx
from .formats import Format, format_info, formats, qtype
from .ops import dequantize, qmatmul, quantize

__version__ = "0.1.0"


def gpu_backend() -> str:
    """'cuda' or 'hip' when this build contains GPU kernels, '' for a CPU-only build."""
    return _C.gpu_backend()


# Model-level API, imported on first use so that `import rocq` stays light (no transformers).
# Loading a checkpoint saved with RocqConfig needs the config registered with transformers
# first: touch rocq.RocqConfig (or `import rocq.hf`) before from_pretrained.
_LAZY = {
    "QuantLinear": "nn",
    "QuantizeSummary": "nn",
    "quantize_model": "nn",
    "enable_peft": "nn",
    "RocqConfig": "hf",
    "static_cache": "hf",
    "load_gguf": "gguf_loader",
    "load_gguf_tokenizer": "gguf_loader",
    "inspect_gguf": "gguf_loader",
    "GGUFError": "gguf_loader",
    "load_quark": "quark",
    "from_pretrained": "loading",
}


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'rocq' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["Format", "format_info", "formats", "qtype", "qmatmul", "dequantize", "quantize", "ops", "mx",
           "gpu_backend", *_LAZY]
