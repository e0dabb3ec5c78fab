"""transformers integration: ``quantization_config=rocq.RocqConfig(...)``.

Registered through transformers' public plugin API (``register_quantization_config`` /
``register_quantizer``) under the method name ``"rocq"``, so once ``rocq`` (or ``rocq.hf``) is
imported::

    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=rocq.RocqConfig(qtype="q4_k"))
    model.save_pretrained(out)                # qweight/scales bytes + quantization_config in config.json
    model = AutoModelForCausalLM.from_pretrained(out)   # reloads the quantized bytes, no re-quantization

Quantize-on-load: the model skeleton (on the meta device) gets a :class:`rocq.QuantLinear` for
every selected ``nn.Linear``; each checkpoint weight is quantized as it is read and its full
precision copy dropped, so peak memory is the quantized model plus one layer.

The resolved per-layer formats are written into the saved config (``layers``), so a reload
rebuilds exactly the same modules even if the defaults of ``plan_quantization`` change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .formats import format_info
from .nn import QuantLinear, _quantize_weight, plan_quantization

try:  # transformers is optional for the rest of rocq
    from transformers.core_model_loading import ConversionOps
    from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
    from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING
    from transformers.utils.quantization_config import QuantizationConfigMixin
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "rocq.hf needs transformers>=5 (pip install 'transformers==5.17.0'); " f"import failed: {e}"
    ) from e

__all__ = ["RocqConfig", "RocqHfQuantizer", "QUANT_METHOD", "static_cache"]

QUANT_METHOD = "rocq"


def static_cache(model, max_cache_len: int, batch_size: int = 1):
    """A transformers ``StaticCache`` for compiled decoding of ``model``, allocated now.

    transformers' recipe for ``torch.compile(mode="reduce-overhead")``: the cache tensors exist
    (and are marked as static addresses) before the first compiled call, so CUDA graphs update
    them in place. A cache created lazily inside the compiled prefill makes inductor skip CUDA
    graphs for "mutated inputs" (and torch 2.11 then crashes in its Triton launcher, with or
    without rocq layers). Pass it as ``past_key_values``; ``cache.reset()`` clears it in place.
    """
    from transformers import StaticCache

    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    cache = StaticCache(config=cfg, max_cache_len=max_cache_len)
    cache.early_initialization(batch_size=batch_size, num_heads=cfg.num_key_value_heads, head_dim=head_dim,
                               dtype=model.dtype, device=model.device)
    return cache


class RocqConfig(QuantizationConfigMixin):
    """Quantization config for rocq.

    Args:
        qtype: default weight format (``"q4_k"``, ``"q8_0"``, ``"ocp_mxfp4"``, ... or an id).
        skip: module-name patterns kept in full precision (default: ``["lm_head"]``); the
            model's ``_keep_in_fp32_modules`` are always kept too.
        overrides: ``{pattern: qtype or None}`` per-layer formats (first match wins).
        strict: raise instead of skipping layers whose ``in_features`` is not a multiple of
            the format's block size.
        layers: resolved ``{module name: qtype name}``; filled in when a model is quantized,
            read back when it is reloaded (leave it unset).
    """

    def __init__(self, qtype: str | int = "q4_k", skip=("lm_head",), overrides: dict | None = None,
                 strict: bool = False, layers: dict | None = None, **kwargs):
        self.quant_method = QUANT_METHOD
        self.qtype = format_info(qtype).name
        self.skip = [skip] if isinstance(skip, str) else list(skip or [])
        self.overrides = {k: (None if v is None else format_info(v).name) for k, v in dict(overrides or {}).items()}
        self.strict = bool(strict)
        self.layers = dict(layers) if layers else None
        for k, v in kwargs.items():  # unknown keys from a newer rocq: keep them, round-trip them
            setattr(self, k, v)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["quant_method"] = QUANT_METHOD
        return d


class _RocqQuantize(ConversionOps):
    """Loading op: a full-precision ``<layer>.weight`` -> ``<layer>.qweight`` / ``<layer>.scales``."""

    def __init__(self, hf_quantizer):
        self.hf_quantizer = hf_quantizer

    def convert(self, input_dict: dict, model=None, missing_keys=None, **kwargs) -> dict:
        out = {}
        for key, value in input_dict.items():
            value = value[0] if isinstance(value, list) else value
            prefix, _, name = key.rpartition(".")
            module = model.get_submodule(prefix)
            if not isinstance(module, QuantLinear) or name != "weight":
                out[key] = value
                continue
            q, s = _quantize_weight(value, module.qtype)
            module._buffers.pop("weight", None)  # the placeholder that let the checkpoint key match
            if missing_keys is not None:
                missing_keys.discard(key)
            out[f"{prefix}.qweight"] = q
            out[f"{prefix}.scales"] = s
        return out


class RocqHfQuantizer(HfQuantizer):
    """Replaces ``nn.Linear`` by :class:`rocq.QuantLinear` while a model loads."""

    requires_calibration = False
    requires_parameters_quantization = True

    def __init__(self, quantization_config: RocqConfig, **kwargs):
        super().__init__(quantization_config, **kwargs)
        self.modules: dict[str, int] = {}

    def validate_environment(self, *args, **kwargs):
        device_map = kwargs.get("device_map")
        if isinstance(device_map, dict) and "disk" in device_map.values():
            raise ValueError("rocq: disk offload of quantized layers is not supported")

    def update_dtype(self, dtype):
        return dtype

    def _plan(self, model) -> dict[str, int]:
        cfg = self.quantization_config
        if self.pre_quantized and cfg.layers:
            return {name: format_info(q).id for name, q in cfg.layers.items()}
        skip = list(cfg.skip) + list(getattr(model, "_keep_in_fp32_modules", None) or [])
        plan = plan_quantization(model, cfg.qtype, skip=skip, overrides=cfg.overrides, strict=cfg.strict)
        return {name: q for name, _, q, _ in plan if q is not None}

    def _process_model_before_weight_loading(self, model, **kwargs):
        self.modules = self._plan(model)
        for name, q in self.modules.items():
            try:
                lin = model.get_submodule(name)
            except AttributeError as e:
                raise ValueError(f"rocq: quantization_config lists layer {name!r}, which this model lacks") from e
            if not isinstance(lin, nn.Linear):
                raise ValueError(f"rocq: {name!r} is {type(lin).__name__}, not nn.Linear")
            dtype = lin.weight.dtype if lin.weight.dtype.is_floating_point else None
            new = QuantLinear(lin.in_features, lin.out_features, bias=lin.bias is not None, qtype=q,
                              device="meta", dtype=dtype)
            if not self.pre_quantized:
                # placeholder so that the checkpoint's "<layer>.weight" finds a home; the quantize
                # op consumes it (see _RocqQuantize)
                new.register_buffer("weight", torch.empty(lin.weight.shape, dtype=lin.weight.dtype, device="meta"))
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, new)
        return model

    def param_needs_quantization(self, model, param_name: str, **kwargs) -> bool:
        if self.pre_quantized:
            return False
        prefix, _, name = param_name.rpartition(".")
        return name == "weight" and prefix in self.modules

    def get_quantize_ops(self):
        return _RocqQuantize(self)

    def _process_model_after_weight_loading(self, model, **kwargs):
        leftovers = []
        for name in self.modules:
            m = model.get_submodule(name)
            if "weight" in m._buffers:
                m._buffers.pop("weight")
                leftovers.append(name)
            if m.qweight.device.type == "meta":
                leftovers.append(name)
        if leftovers:
            raise ValueError(f"rocq: no weights were loaded for {sorted(set(leftovers))[:8]} (checkpoint incomplete?)")
        self.quantization_config.layers = {n: format_info(q).name for n, q in self.modules.items()}
        return model

    def is_serializable(self, safe_serialization=None) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        return True  # LoRA adapters on top (rocq.nn.enable_peft); the quantized weights are frozen

    @property
    def is_qat_trainable(self) -> bool:
        return False

    @property
    def is_compileable(self) -> bool:
        return True

    def _dequantize(self, model, dtype=None):
        for name, mod in list(model.named_modules()):
            if isinstance(mod, QuantLinear):
                parent, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent) if parent else model, child, mod.to_linear(dtype))
        return model


# Registration is idempotent across re-imports (importlib.reload, test isolation).
if AUTO_QUANTIZATION_CONFIG_MAPPING.get(QUANT_METHOD) is None:
    register_quantization_config(QUANT_METHOD)(RocqConfig)
else:
    AUTO_QUANTIZATION_CONFIG_MAPPING[QUANT_METHOD] = RocqConfig
if AUTO_QUANTIZER_MAPPING.get(QUANT_METHOD) is None:
    register_quantizer(QUANT_METHOD)(RocqHfQuantizer)
else:
    AUTO_QUANTIZER_MAPPING[QUANT_METHOD] = RocqHfQuantizer
