"""Load AMD Quark OCP-MX checkpoints (HuggingFace safetensors exports) into rocq QuantLinear
layers without dequantizing: the exported bytes are rocq's planar MX layout as they are.

What a Quark export looks like (``quark.torch.export_safetensors``, checked against amd-quark
0.13, which exports fp4 / fp6_e2m3 / fp6_e3m2; its real-quantized export refuses MX fp8/int8):

* ``config.json`` -> ``quantization_config``: ``quant_method: "quark"``, ``global_quant_config``,
  ``layer_quant_config`` (fnmatch pattern -> layer config), ``layer_type_quant_config``
  (module class name -> layer config), ``exclude`` (fnmatch patterns). A layer config's
  ``weight`` is a dict with ``dtype`` ("fp4", "fp6_e2m3", "fp6_e3m2", "fp8_e4m3", "fp8_e5m2",
  "int8", or "mx" with ``mx_element_dtype``), ``qscheme: "per_group"``, ``group_size: 32``,
  ``scale_format: "e8m0"``, ``ch_axis: -1``.
* ``<layer>.weight``: uint8 [n, k/2] (fp4: element 2i in the low nibble) or [n, 3k/4] (fp6:
  four 6-bit codes per little-endian 24-bit word); fp8/int8 (not exported by Quark 0.13) are
  accepted as uint8 / float8 / int8 [n, k]. ``<layer>.weight_scale``: uint8 biased E8M0 [n, k/32].

Activation quantization in the config (``input_tensors`` / ``output_tensors``) is not emulated:
rocq multiplies full-precision activations by the MX weight (a warning says so).

    model = rocq.quark.load_quark("path/to/export")            # transformers model, QuantLinear inside
    replaced = rocq.quark.apply_quark(model, tensors, qcfg)     # any nn.Module + its state dict
"""
from __future__ import annotations

import fnmatch
import json
import os
import warnings
from typing import Mapping, Optional

import torch
from torch import nn

from .formats import format_info

# Quark element dtype -> rocq planar format.
QUARK_DTYPES = {
    "fp4": "ocp_mxfp4",
    "fp6_e2m3": "ocp_mxfp6_e2m3",
    "fp6_e3m2": "ocp_mxfp6_e3m2",
    "fp8_e4m3": "ocp_mxfp8_e4m3",
    "fp8_e5m2": "ocp_mxfp8_e5m2",
    "int8": "ocp_mxint8",
}
# torch dtypes a byte-per-element plane may come in (viewed as uint8, no conversion).
_BYTE_DTYPES = {torch.uint8, torch.int8, getattr(torch, "float8_e4m3fn", None), getattr(torch, "float8_e5m2", None)}


class QuarkFormatError(ValueError):
    """The checkpoint uses a Quark scheme that rocq cannot hold without dequantizing."""


def is_quark_config(quantization_config: Optional[Mapping]) -> bool:
    return isinstance(quantization_config, Mapping) and quantization_config.get("quant_method") == "quark"


def _get(d, key, default=None):
    if d is None:
        return default
    if isinstance(d, Mapping):
        return d.get(key, default)
    return getattr(d, key, default)


def layer_config(qcfg: Mapping, name: str, type_name: str = "Linear") -> Optional[Mapping]:
    """The Quark layer config that applies to module `name` (None when excluded / unquantized).
    Precedence as in Quark: exclude, then layer_quant_config (fnmatch), layer_type_quant_config,
    global_quant_config."""
    for pat in _get(qcfg, "exclude", None) or ():
        if fnmatch.fnmatch(name, pat) or name == pat:
            return None
    for pat, cfg in (_get(qcfg, "layer_quant_config", None) or {}).items():
        if fnmatch.fnmatch(name, pat):
            return cfg
    by_type = _get(qcfg, "layer_type_quant_config", None) or {}
    if type_name in by_type:
        return by_type[type_name]
    return _get(qcfg, "global_quant_config", None)


def weight_format(weight_cfg: Optional[Mapping], name: str = "?") -> Optional[str]:
    """rocq format name for a Quark weight spec, None when the weight is not quantized.
    Raises QuarkFormatError for quantized schemes that are not OCP MX per-group-32 E8M0."""
    if isinstance(weight_cfg, (list, tuple)):
        if len(weight_cfg) != 1:
            raise QuarkFormatError(f"rocq.quark: layer {name}: multi-stage weight quantization "
                                   f"({len(weight_cfg)} specs) is not supported")
        weight_cfg = weight_cfg[0]
    if weight_cfg is None:
        return None
    dtype = str(_get(weight_cfg, "dtype", "")).lower()
    if dtype == "mx":
        dtype = str(_get(weight_cfg, "mx_element_dtype", "")).lower()
    fmt = QUARK_DTYPES.get(dtype)
    scheme = str(_get(weight_cfg, "qscheme", "")).lower().replace("qschemetype.", "")
    ok = (fmt is not None and scheme == "per_group" and int(_get(weight_cfg, "group_size", 0) or 0) == 32
          and str(_get(weight_cfg, "scale_format", "")).lower() == "e8m0"
          and int(_get(weight_cfg, "ch_axis", -1) if _get(weight_cfg, "ch_axis", -1) is not None else -1) in (-1, 1))
    if not ok:
        raise QuarkFormatError(
            f"rocq.quark: layer {name}: weight scheme dtype={_get(weight_cfg, 'dtype')!r} qscheme={scheme!r} "
            f"group_size={_get(weight_cfg, 'group_size')!r} scale_format={_get(weight_cfg, 'scale_format')!r} "
            f"ch_axis={_get(weight_cfg, 'ch_axis')!r} is not an OCP MX format rocq holds (per_group, group_size 32, "
            f"e8m0 scales along the input dimension, element dtype one of {', '.join(QUARK_DTYPES)})")
    return fmt


def _as_bytes(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dtype not in _BYTE_DTYPES:
        raise QuarkFormatError(f"rocq.quark: {name} must hold raw bytes (uint8), got {t.dtype}")
    return t if t.dtype == torch.uint8 else t.contiguous().view(torch.uint8)


def apply_quark(model: nn.Module, tensors: Mapping[str, torch.Tensor], quantization_config: Mapping,
                dtype: Optional[torch.dtype] = None, device=None) -> list[str]:
    """Replaces every nn.Linear of `model` whose checkpoint entry is Quark-MX quantized
    (``<name>.weight`` bytes + ``<name>.weight_scale`` E8M0) with a rocq QuantLinear holding
    those bytes unchanged. Returns the replaced module names. Other parameters are untouched."""
    from .nn import QuantLinear

    if not is_quark_config(quantization_config):
        raise ValueError("rocq.quark: quantization_config is not a Quark config (quant_method != 'quark')")
    replaced = []
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, nn.Linear) or f"{name}.weight_scale" not in tensors:
            continue
        fmt = weight_format(_get(layer_config(quantization_config, name, type(mod).__name__), "weight"), name)
        if fmt is None:
            raise QuarkFormatError(f"rocq.quark: {name} has a weight_scale but the config leaves it unquantized")
        f = format_info(fmt)
        n, k = mod.out_features, mod.in_features
        qw = _as_bytes(tensors[f"{name}.weight"], f"{name}.weight")
        sc = _as_bytes(tensors[f"{name}.weight_scale"], f"{name}.weight_scale")
        if k % 32 or tuple(qw.shape) != (n, f.row_bytes(k)) or tuple(sc.shape) != (n, k // 32):
            raise QuarkFormatError(
                f"rocq.quark: {name}: expected {fmt} weight uint8 [{n}, {f.row_bytes(k)}] and weight_scale "
                f"[{n}, {k // 32}] for a Linear({k}, {n}), got {tuple(qw.shape)} and {tuple(sc.shape)}")
        bias = tensors.get(f"{name}.bias")
        if bias is None and mod.bias is not None and mod.bias.device.type != "meta":
            bias = mod.bias.detach()
        mdtype = dtype or (mod.weight.dtype if mod.weight.is_floating_point() else None)
        if device is not None:
            qw, sc = qw.to(device), sc.to(device)
            bias = bias.to(device) if bias is not None else None
        new = QuantLinear.from_quantized(qw.contiguous(), sc.contiguous(), f.id, k, n, bias=bias, dtype=mdtype)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
        replaced.append(name)
    return replaced


def _warn_activation_quant(qcfg: Mapping) -> None:
    cfgs = [_get(qcfg, "global_quant_config")] + list((_get(qcfg, "layer_quant_config") or {}).values()) + \
        list((_get(qcfg, "layer_type_quant_config") or {}).values())
    if any(_get(c, "input_tensors") or _get(c, "output_tensors") for c in cfgs if c is not None):
        warnings.warn("rocq.quark: the checkpoint also quantizes activations; rocq keeps activations in "
                      "full precision and only holds the weights quantized", stacklevel=3)


def read_quark_dir(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config dict, all safetensors tensors) of a Quark HF export directory."""
    from safetensors.torch import load_file

    with open(os.path.join(path, "config.json")) as fh:
        config = json.load(fh)
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"rocq.quark: no .safetensors file in {path}")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(os.path.join(path, f)))
    return config, tensors


def load_quark(path: str, dtype: Optional[torch.dtype] = None, device=None):
    """Builds the transformers model of a Quark OCP-MX export in `path` with its MX Linear layers
    as rocq QuantLinear (weights stay in the exported bytes) and everything else loaded as
    stored. dtype: of the non-quantized parameters and activations (default: the config's
    torch_dtype, else float32)."""
    import transformers

    config_dict, tensors = read_quark_dir(path)
    qcfg = config_dict.get("quantization_config")
    if not is_quark_config(qcfg):
        raise ValueError(f"rocq.quark: {path}/config.json has no Quark quantization_config "
                         f"(quant_method={_get(qcfg, 'quant_method')!r})")
    _warn_activation_quant(qcfg)
    config = transformers.AutoConfig.from_pretrained(path)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # build a plain model; rocq supplies the quantized layers
    if dtype is None:
        cd = getattr(config, "torch_dtype", None) or getattr(config, "dtype", None)
        dtype = cd if isinstance(cd, torch.dtype) else (getattr(torch, cd) if isinstance(cd, str) else torch.float32)
    try:
        from accelerate import init_empty_weights
    except ImportError:  # build for real (costs a float copy of the model while loading)
        init_empty_weights = None
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        if init_empty_weights is not None:
            with init_empty_weights(include_buffers=False):
                model = transformers.AutoModelForCausalLM.from_config(config)
        else:
            model = transformers.AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(prev)
    replaced = set(apply_quark(model, tensors, qcfg, dtype=dtype, device=device))
    rest = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()
            if k.rpartition(".")[0] not in replaced}
    missing, unexpected = model.load_state_dict(rest, strict=False, assign=True)
    if getattr(config, "tie_word_embeddings", False) and hasattr(model, "tie_weights"):
        model.tie_weights()
    still_meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if still_meta:
        raise ValueError(f"rocq.quark: {path} lacks tensors for {still_meta[:5]}"
                         f"{' ...' if len(still_meta) > 5 else ''}")
    if unexpected:
        unq = [u for u in unexpected if not u.endswith(("input_scale", "output_scale"))]
        if unq:
            warnings.warn(f"rocq.quark: ignored {len(unq)} checkpoint tensors, e.g. {unq[:3]}", stacklevel=2)
    if device is not None:
        model = model.to(device)
    return model.eval()


__all__ = ["QUARK_DTYPES", "QuarkFormatError", "is_quark_config", "layer_config", "weight_format", "apply_quark",
           "read_quark_dir", "load_quark"]
