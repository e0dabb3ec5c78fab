"""rocq.from_pretrained: one entry for the checkpoints rocq keeps quantized.

- a ``.gguf`` file, or a directory plus ``gguf_file=``: llama.cpp's GGUF (rocq.load_gguf);
- a directory whose config.json has ``quantization_config.quant_method == "quark"``: an AMD
  Quark OCP-MX export (rocq.quark.load_quark).

Checkpoints saved with ``save_pretrained`` after quantizing through ``RocqConfig`` load with
transformers' own ``AutoModelForCausalLM.from_pretrained`` (see rocq.hf).
"""
from __future__ import annotations

import json
import os


def _quant_method(directory: str):
    cfg = os.path.join(directory, "config.json")
    if not os.path.isfile(cfg):
        return None
    with open(cfg) as f:
        qc = json.load(f).get("quantization_config") or {}
    return qc.get("quant_method") if isinstance(qc, dict) else None


def from_pretrained(path_or_dir, gguf_file: str | None = None, device=None, dtype=None, tokenizer: bool = False,
                    **kwargs):
    """Loads a model whose linear weights stay quantized. Returns the model, or
    ``(model, tokenizer)`` with ``tokenizer=True``."""
    path = os.fspath(path_or_dir)
    if gguf_file or os.path.isfile(path):
        from .gguf_loader import load_gguf, load_gguf_tokenizer

        file = os.path.join(path, gguf_file) if gguf_file else path
        model = load_gguf(file, device=device, dtype=dtype, **kwargs)
        return (model, load_gguf_tokenizer(file)) if tokenizer else model
    if not os.path.isdir(path):
        raise FileNotFoundError(f"rocq.from_pretrained: no such file or directory: {path}")
    method = _quant_method(path)
    if method == "quark":
        from .quark import load_quark

        model = load_quark(path, dtype=dtype, device=device, **kwargs)
        if tokenizer:
            from transformers import AutoTokenizer

            return model, AutoTokenizer.from_pretrained(path)
        return model
    ggufs = sorted(f for f in os.listdir(path) if f.endswith(".gguf"))
    hint = f"; GGUF files here: {', '.join(ggufs)} (pass gguf_file=...)" if ggufs else ""
    raise ValueError(f"rocq.from_pretrained: {path} is neither a GGUF file nor a Quark OCP-MX export "
                     f"(quant_method={method!r}){hint}. Checkpoints saved from a RocqConfig model load with "
                     "transformers.AutoModelForCausalLM.from_pretrained after `import rocq.hf`.")
