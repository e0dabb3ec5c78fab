"""Load a GGUF file into a transformers model whose Linear weights stay in their GGUF types.

    model = rocq.load_gguf("model-Q4_K_M.gguf", device="cuda")            # transformers model
    tok = rocq.gguf_loader.load_gguf_tokenizer("model-Q4_K_M.gguf")        # transformers tokenizer

* Config and tokenizer come from transformers' own GGUF support
  (``AutoConfig/AutoTokenizer.from_pretrained(dir, gguf_file=name)``), so the model class is the
  ordinary transformers one; it is built with empty (meta) parameters and filled from the file.
* Every Linear weight whose GGUF type rocq computes with becomes a :class:`rocq.QuantLinear`
  holding the tensor's bytes unchanged; mixed-type files (Q4_K_M = Q4_K + Q6_K + ...) give one
  QuantLinear per type. F32/F16/BF16 Linear weights become ordinary ``nn.Linear`` in ``dtype``.
* Quantized token embeddings stay quantized too (:class:`QuantEmbedding`: a lookup gathers the
  byte rows of the requested tokens and dequantizes only those), and a tied LM head
  (no ``output.weight`` in the file) shares the very same bytes.
* Norms, biases and other small tensors are decoded to ``dtype`` (gguf-py's decoder; they are
  tiny). Gemma's norms are stored by llama.cpp as ``1 + w`` and are converted back.
* llama.cpp stores the Q and K projections of ``llama``-architecture files (Llama, Mistral) with
  the rows of each head interleaved for its rotary kernel; rocq undoes it by permuting whole
  quantized rows (each row is one output feature, its bytes are untouched).
* Tensor bytes are read with plain file reads straight into the destination tensor (GPU: one
  pinned staging buffer, reused), never through a full-file copy: peak host memory is about the
  file size for a CPU load and a small fraction of it for a GPU load.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .formats import format_info
from .nn import QuantLinear

__all__ = ["load_gguf", "load_gguf_tokenizer", "from_pretrained", "inspect_gguf", "GGUFError",
           "QuantEmbedding", "SUPPORTED_ARCHITECTURES"]

# GGUF general.architecture values this loader knows how to map (Mistral files say "llama").
SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3")
# architectures whose Q/K rows llama.cpp interleaves per head (its non-NEOX rotary layout)
_PERMUTE_QK = ("llama", "mistral")
# llama.cpp stores these architectures' RMSNorm weights as (1 + w)
_NORM_PLUS_ONE = ("gemma2", "gemma3")
_DENSE_TYPES = {0: torch.float32, 1: torch.float16, 30: torch.bfloat16}
# tensors llama.cpp writes that have no transformers counterpart (derived from the config)
_AUX_TENSORS = ("rope_freqs", "rope_factors_long", "rope_factors_short")


class GGUFError(ValueError):
    """A GGUF file rocq cannot load (corrupt, truncated, unsupported architecture or type)."""


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    name: str
    ggml_type: int
    type_name: str
    shape: tuple  # torch order: (rows, ..., ne0)
    n_bytes: int
    offset: int  # absolute file offset


def _open(path: str):
    import gguf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"rocq.load_gguf: no such file: {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise GGUFError(f"{path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as e:  # numpy reshape/index errors on truncated or corrupt headers
        raise GGUFError(f"{path}: corrupt or truncated GGUF header ({type(e).__name__}: {e})") from e
    tensors = []
    for t in reader.tensors:
        ne = [int(x) for x in t.shape]  # innermost first
        try:
            type_name = gguf.GGMLQuantizationType(int(t.tensor_type)).name
        except ValueError:
            type_name = f"type{int(t.tensor_type)}"
        tt = _Tensor(t.name, int(t.tensor_type), type_name, tuple(reversed(ne)), int(t.n_bytes), int(t.data_offset))
        if tt.offset + tt.n_bytes > size:
            raise GGUFError(
                f"{path}: truncated: tensor {t.name!r} needs bytes [{tt.offset}, {tt.offset + tt.n_bytes}) "
                f"but the file has {size} bytes"
            )
        tensors.append(tt)
    return reader, tensors


def _field(reader, key, default=None):
    f = reader.get_field(key)
    if f is None:
        return default
    try:
        return f.contents()
    except Exception:
        return default


def inspect_gguf(path) -> dict:
    """Architecture, metadata summary and tensor list of a GGUF file (no tensor data read)."""
    reader, tensors = _open(path)
    arch = _field(reader, "general.architecture", "?")
    meta = {}
    for key, f in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key not in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
            try:
                meta[key] = f"[{len(f.data)} entries]"
            except Exception:
                meta[key] = "?"
            continue
        if key.startswith("GGUF."):
            continue
        try:
            v = f.contents()
        except Exception:
            v = "?"
        if isinstance(v, list) and len(v) > 8:
            v = f"[{len(v)} entries]"
        meta[key] = v
    by_type: dict[str, list[int]] = {}
    for t in tensors:
        c = by_type.setdefault(t.type_name, [0, 0])
        c[0] += 1
        c[1] += t.n_bytes
    return {
        "path": os.fspath(path),
        "file_bytes": os.path.getsize(path),
        "architecture": arch,
        "name": _field(reader, "general.name"),
        "metadata": meta,
        "tensors": [(t.name, t.type_name, list(t.shape), t.n_bytes) for t in tensors],
        "types": by_type,
    }


class _ByteReader:
    """Reads tensor bytes with pread into torch tensors (no mmap pages held, no extra copy)."""

    def __init__(self, path, device):
        self.fd = os.open(path, os.O_RDONLY)
        self.device = torch.device(device)
        self.staging = None

    def close(self):
        os.close(self.fd)

    def _read_into(self, buf: torch.Tensor, offset: int):
        mv = memoryview(buf.numpy()).cast("B")
        done = 0
        while done < len(mv):
            n = os.preadv(self.fd, [mv[done:]], offset + done)
            if n <= 0:
                raise GGUFError(f"unexpected end of file at offset {offset + done}")
            done += n

    def read(self, t: _Tensor, device=None) -> torch.Tensor:
        """The tensor's raw bytes as a uint8 tensor on ``device`` (default: the loader's)."""
        device = torch.device(device) if device is not None else self.device
        if device.type == "cpu":
            buf = torch.empty(t.n_bytes, dtype=torch.uint8)
            self._read_into(buf, t.offset)
            return buf
        if self.staging is None or self.staging.numel() < t.n_bytes:
            self.staging = torch.empty(max(t.n_bytes, 1 << 20), dtype=torch.uint8,
                                       pin_memory=torch.cuda.is_available())
        buf = self.staging[: t.n_bytes]
        self._read_into(buf, t.offset)
        return buf.to(device, non_blocking=False)


def _decode(raw: torch.Tensor, t: _Tensor, dtype) -> torch.Tensor:
    """Dense values of a (small) tensor, on raw's device."""
    if t.ggml_type in _DENSE_TYPES:
        return raw.view(_DENSE_TYPES[t.ggml_type]).reshape(t.shape).to(dtype)
    rows = int(np.prod(t.shape[:-1])) if len(t.shape) > 1 else 1
    k = t.shape[-1]
    try:
        return torch.ops.rocq.dequantize(raw.reshape(rows, -1), None, t.ggml_type, rows, k, dtype).reshape(t.shape)
    except Exception:
        from gguf.quants import dequantize as _gdq

        try:
            vals = _gdq(raw.cpu().numpy().reshape(rows, -1), t.ggml_type)
        except NotImplementedError as e:
            raise GGUFError(f"tensor {t.name!r}: cannot decode GGUF type {t.type_name}") from e
        return torch.from_numpy(np.ascontiguousarray(vals)).reshape(t.shape).to(raw.device, dtype)


# --------------------------------------------------------------------------------------------
# quantized embedding
# --------------------------------------------------------------------------------------------
class QuantEmbedding(nn.Module):
    """``nn.Embedding`` whose table stays in a rocq format; a lookup dequantizes only the rows
    it gathers. ``embed_scale`` (Gemma) multiplies the output when set."""

    def __init__(self, qweight: torch.Tensor, scales: torch.Tensor | None, qtype, num_embeddings: int,
                 embedding_dim: int, dtype=torch.float32, padding_idx=None, embed_scale=None):
        super().__init__()
        info = format_info(qtype)
        self.qtype, self.qtype_name, self._has_scales = info.id, info.name, info.scale_plane
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        self.register_buffer("qweight", qweight.reshape(num_embeddings, -1))
        self.register_buffer("scales", scales if scales is not None else torch.empty(0, dtype=torch.uint8,
                                                                                     device=qweight.device))
        self._dtype = dtype
        if embed_scale is not None:
            self.register_buffer("embed_scale", torch.as_tensor(embed_scale).to(qweight.device), persistent=False)
        else:
            self.embed_scale = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        rows = self.qweight.index_select(0, flat)
        sc = self.scales.index_select(0, flat) if self._has_scales else None
        out = torch.ops.rocq.dequantize(rows, sc, self.qtype, flat.shape[0], self.embedding_dim, self._dtype)
        out = out.reshape(*ids.shape, self.embedding_dim)
        if self.embed_scale is not None:
            out = out * self.embed_scale.to(out.dtype)
        return out

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (materialized on access; for code that inspects ``.weight``)."""
        return torch.ops.rocq.dequantize(self.qweight, self.scales if self._has_scales else None, self.qtype,
                                         self.num_embeddings, self.embedding_dim, self._dtype)

    def _apply(self, fn, recurse=True):
        qweight, scales = self._buffers.pop("qweight"), self._buffers.pop("scales")
        try:
            super()._apply(fn, recurse)
            probes = [fn(torch.empty(0, dtype=dt, device=qweight.device)) for dt in (torch.float32, torch.float16)]
        finally:
            self._buffers["qweight"], self._buffers["scales"] = qweight, scales
        if probes[0].dtype == probes[1].dtype and probes[0].dtype.is_floating_point:
            self._dtype = probes[0].dtype
        if probes[0].device != qweight.device:
            self._buffers["qweight"] = qweight.to(probes[0].device)
            self._buffers["scales"] = scales.to(probes[0].device)
        return self

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, qtype={self.qtype_name} "
                f"({format_info(self.qtype).bits_per_weight:.4g} bits/weight)")


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def _rocq_type(ggml_type: int):
    try:
        return format_info(ggml_type)
    except (ValueError, TypeError):
        return None


def _set_module(model, name, new):
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _qk_row_permutation(rows: int, n_heads: int) -> torch.Tensor:
    """Index of the file row that lands on each transformers row: per head of d rows, the file
    holds pairs (i, i + d/2) interleaved; transformers wants the two halves contiguous."""
    d = rows // n_heads
    h = torch.arange(n_heads).view(n_heads, 1, 1)
    j = torch.arange(2).view(1, 2, 1)
    i = torch.arange(d // 2).view(1, 1, d // 2)
    return (h * d + 2 * i + j).reshape(-1)


def _config_and_arch(path, dtype):
    from transformers import AutoConfig

    d, name = os.path.split(os.path.abspath(path))
    try:
        config = AutoConfig.from_pretrained(d, gguf_file=name)
    except ValueError as e:
        raise GGUFError(f"{path}: transformers cannot build a config from this GGUF file: {e}") from e
    config.dtype = dtype
    return config


def _fix_config(config, reader, arch):
    """Fill what transformers' GGUF config mapping leaves at class defaults but the file states."""
    key_len = _field(reader, f"{arch}.attention.key_length")
    if key_len is not None and hasattr(config, "head_dim") and config.head_dim != key_len:
        config.head_dim = int(key_len)


def load_gguf(path, device=None, dtype: torch.dtype | None = None, quantized_embeddings: bool = True,
              dequantize_unsupported: bool = False):
    """Build the transformers causal-LM model described by a GGUF file, weights kept quantized.

    Args:
        path: the ``.gguf`` file.
        device: where the model lives (default: ``cuda`` if available, else ``cpu``).
        dtype: dtype of activations and of the dense tensors (default: bf16 on GPU, fp32 on CPU).
        quantized_embeddings: keep a quantized token-embedding table quantized
            (:class:`QuantEmbedding`) instead of decoding it to ``dtype``.
        dequantize_unsupported: decode Linear weights of GGUF types rocq cannot compute with
            (e.g. IQ2_XXS) to dense ``nn.Linear`` instead of raising.

    Raises:
        GGUFError: corrupt/truncated file, unsupported architecture or tensor type, tensors that do
            not match the model.
    """
    from accelerate import init_empty_weights
    from gguf import MODEL_ARCH_NAMES, get_tensor_name_map
    from transformers import AutoModelForCausalLM

    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    reader, tensors = _open(path)
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise GGUFError(
            f"{path}: architecture {arch!r} is not supported by rocq.load_gguf "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    config = _config_and_arch(path, dtype)
    _fix_config(config, reader, arch)
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()

    # GGUF name -> transformers parameter name, through gguf-py's own tensor-name table
    arch_enum = next(k for k, v in MODEL_ARCH_NAMES.items() if v == arch)
    name_map = get_tensor_name_map(arch_enum, config.num_hidden_layers)
    gguf_to_hf = {}
    for pname, _ in model.named_parameters(remove_duplicate=False):
        base, _, suffix = pname.rpartition(".")
        g = name_map.get_name(base)
        if g is not None:
            gguf_to_hf.setdefault(f"{g}.{suffix}", pname)

    text_cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_head = text_cfg.num_attention_heads
    n_kv = getattr(text_cfg, "num_key_value_heads", None) or n_head

    br = _ByteReader(path, device)
    loaded = set()
    quantized_modules: dict[str, nn.Module] = {}
    try:
        for t in tensors:
            hf = gguf_to_hf.get(t.name)
            if hf is None:
                if t.name.split(".")[0] in _AUX_TENSORS or t.name.startswith(_AUX_TENSORS):
                    continue
                raise GGUFError(f"{path}: tensor {t.name!r} has no counterpart in {type(model).__name__}")
            mod_name, _, pname = hf.rpartition(".")
            mod = model.get_submodule(mod_name)
            want = tuple(getattr(mod, pname).shape)
            if tuple(t.shape) != want:
                raise GGUFError(f"{path}: tensor {t.name!r} has shape {list(t.shape)}, "
                                f"{hf} expects {list(want)}")
            perm = None
            if arch in _PERMUTE_QK and pname in ("weight", "bias"):
                if mod_name.endswith("self_attn.q_proj"):
                    perm = _qk_row_permutation(t.shape[0], n_head)
                elif mod_name.endswith("self_attn.k_proj"):
                    perm = _qk_row_permutation(t.shape[0], n_kv)
            info = _rocq_type(t.ggml_type) if t.ggml_type not in _DENSE_TYPES else None
            is_linear_w = isinstance(mod, nn.Linear) and pname == "weight"
            is_embed_w = isinstance(mod, nn.Embedding) and pname == "weight"
            if (is_linear_w or (is_embed_w and quantized_embeddings)) and t.ggml_type not in _DENSE_TYPES:
                if info is None:
                    if not dequantize_unsupported:
                        raise GGUFError(
                            f"{path}: tensor {t.name!r} has GGUF type {t.type_name}, which rocq cannot "
                            f"compute with (rocq formats: {', '.join(f['name'] for f in _all_formats())}); "
                            f"pass dequantize_unsupported=True to decode it to {dtype}"
                        )
                else:
                    raw = br.read(t).reshape(t.shape[0], -1)
                    if perm is not None:
                        raw = raw.index_select(0, perm.to(raw.device))
                    if is_linear_w:
                        new = QuantLinear.from_quantized(raw, None, info.id, mod.in_features, mod.out_features,
                                                         bias=None, dtype=dtype)
                        if mod.bias is not None:  # the bias Parameter (loaded before or after the weight)
                            new.bias = mod.bias
                    else:
                        new = QuantEmbedding(raw, None, info.id, mod.num_embeddings, mod.embedding_dim,
                                             dtype=dtype, padding_idx=mod.padding_idx,
                                             embed_scale=getattr(mod, "embed_scale", None))
                    _set_module(model, mod_name, new)
                    quantized_modules[mod_name] = new
                    loaded.add(hf)
                    continue
            # dense path: decode to dtype
            raw = br.read(t)
            val = _decode(raw, t, torch.float32)
            if perm is not None:
                val = val.index_select(0, perm.to(val.device))
            if arch in _NORM_PLUS_ONE and t.name.endswith("norm.weight"):
                val = val - 1.0
            val = val.to(dtype)
            target = model.get_submodule(mod_name)  # may have been replaced (QuantLinear bias)
            setattr(target, pname, nn.Parameter(val, requires_grad=False))
            loaded.add(hf)
    finally:
        br.close()

    # Tied embeddings (no output.weight in the file): the head shares the embedding table
    out_emb = model.get_output_embeddings()
    if isinstance(out_emb, nn.Linear) and out_emb.weight.device.type == "meta":
        head_name = next(n for n, m in model.named_modules() if m is out_emb)
        emb = model.get_input_embeddings()
        if isinstance(emb, QuantEmbedding):
            new = QuantLinear.from_quantized(emb.qweight, emb.scales if emb._has_scales else None, emb.qtype,
                                             emb.embedding_dim, emb.num_embeddings, dtype=dtype)
            new.qweight = emb.qweight  # same storage: one copy of the table
            _set_module(model, head_name, new)
        elif emb is not None and emb.weight.device.type != "meta":
            out_emb.weight = emb.weight

    missing = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if missing:
        raise GGUFError(f"{path}: the file lacks tensors for {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    model.to(device)
    model.requires_grad_(False)
    model.rocq_gguf_path = os.fspath(path)
    return model


def _all_formats():
    import importlib

    fm = importlib.import_module(f"{__package__}.formats")
    return [{"name": f.name, "id": f.id} for f in fm.formats()]


def load_gguf_tokenizer(path):
    """The tokenizer stored in the GGUF metadata, through transformers' GGUF tokenizer support."""
    from transformers import AutoTokenizer

    d, name = os.path.split(os.path.abspath(os.fspath(path)))
    return AutoTokenizer.from_pretrained(d, gguf_file=name)
