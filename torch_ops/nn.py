"""QuantLinear: an nn.Linear replacement whose weight stays quantized, and quantize_model.

The weight lives in two uint8 buffers:

* ``qweight`` -- ``[out_features, in_features / block_elems * block_bytes]``; for GGUF types these
  are exactly the bytes of the GGUF tensor (row ``i`` = output feature ``i``).
* ``scales`` -- ``[out_features, in_features / 32]`` E8M0 bytes for rocq's planar OCP MX formats
  (qtype ids >= 100); an empty uint8 tensor for formats that keep their scales inside the blocks.

Both are buffers, not Parameters: the weight is frozen (no gradient, never seen by optimizers),
``.to(dtype)`` / ``.half()`` / ``.bfloat16()`` never touch them, and they appear in
``state_dict()`` so ``safetensors.torch.save_file(m.state_dict())`` round-trips the exact bytes.
The forward is ``torch.ops.rocq.qmatmul`` (output in the input's dtype); gradients flow to the
input (and to ``bias``) through the op's registered autograd formula, which is what a LoRA
adapter on top needs.

``quantize_model`` replaces the ``nn.Linear`` modules of a model in place.
Layers whose ``in_features`` is not a multiple of the format's block size are *skipped with a
warning* (kept in full precision and listed in the summary) unless ``strict=True``, in which
case a ValueError names the layer: one odd-shaped projection should not make a whole model
unusable, but the summary never hides it.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

from .formats import Format, format_info

__all__ = [
    "QuantLinear",
    "QuantizeSummary",
    "quantize_model",
    "plan_quantization",
    "enable_peft",
]

# rocq's planar OCP MX formats carry a separate E8M0 scale per 32 elements.
MX_SCALE_GROUP = 32


def _qweight_shape(info: Format, out_features: int, in_features: int) -> tuple[int, int]:
    return out_features, in_features // info.block_elems * info.block_bytes


def _scales_shape(info: Format, out_features: int, in_features: int) -> tuple[int, ...]:
    if info.scale_plane:
        return out_features, in_features // MX_SCALE_GROUP
    return (0,)


def _check_k(info: Format, in_features: int, what: str = "layer") -> None:
    be = info.block_elems
    group = max(be, MX_SCALE_GROUP) if info.scale_plane else be
    if in_features % group != 0:
        hint = ("; use a format with 32-element blocks (q8_0, q4_0, iq4_nl) or keep it in full precision"
                if group > 32 else "; keep it in full precision")
        raise ValueError(
            f"rocq: {what} has in_features={in_features}, which is not a multiple of the "
            f"{info.name} block size ({group}){hint}"
        )


# --------------------------------------------------------------------------------------------
# QuantLinear
# --------------------------------------------------------------------------------------------
class QuantLinear(nn.Module):
    """``y = x @ W^T + bias`` with ``W`` kept quantized (see the module docstring).

    Args:
        in_features, out_features: as for ``nn.Linear`` (``in_features`` must be a multiple of
            the format's block size).
        bias: whether to create a (trainable) bias Parameter.
        qtype: format name or id (``"q4_k"``, ``"q8_0"``, ``12``, ...).
        device: device of the buffers.
        dtype: float dtype of the bias and the default dtype of :meth:`dequantize`.
    """

    __constants__ = ["in_features", "out_features", "qtype"]

    def __init__(self, in_features: int, out_features: int, bias: bool = True, qtype="q4_k",
                 device=None, dtype=None):
        super().__init__()
        info = format_info(qtype)
        _check_k(info, in_features, f"QuantLinear({in_features}, {out_features})")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.qtype = info.id
        self.qtype_name = info.name
        self._has_scales = info.scale_plane
        self._dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.register_buffer(
            "qweight", torch.zeros(_qweight_shape(info, out_features, in_features), dtype=torch.uint8, device=device)
        )
        self.register_buffer(
            "scales", torch.zeros(_scales_shape(info, out_features, in_features), dtype=torch.uint8, device=device)
        )
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=self._dtype))
        else:
            self.register_parameter("bias", None)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, qtype="q4_k") -> "QuantLinear":
        """Quantize an ``nn.Linear`` (its weight is read, not modified)."""
        w = linear.weight
        dtype = w.dtype if w.dtype.is_floating_point else torch.get_default_dtype()
        if w.device.type == "meta":
            return cls(linear.in_features, linear.out_features, linear.bias is not None, qtype,
                       device="meta", dtype=dtype)
        info = format_info(qtype)
        _check_k(info, linear.in_features, f"Linear({linear.in_features}, {linear.out_features})")
        qweight, scales = _quantize_weight(w, info.id)
        bias = linear.bias.detach() if linear.bias is not None else None
        return cls.from_quantized(qweight, scales, info.id, linear.in_features, linear.out_features,
                                  bias=bias, dtype=dtype)

    @classmethod
    def from_quantized(cls, qweight: torch.Tensor, scales: torch.Tensor | None, qtype, in_features: int,
                       out_features: int, bias: torch.Tensor | None = None, dtype=None) -> "QuantLinear":
        """Wrap already-quantized bytes (e.g. a GGUF tensor) without copying them.

        ``qweight`` may be ``[out_features, bytes_per_row]`` or flat; ``scales`` is required
        for planar MX formats and ignored (may be None) otherwise.
        """
        info = format_info(qtype)
        _check_k(info, in_features, f"quantized weight [{out_features}, {in_features}]")
        if qweight.dtype != torch.uint8:
            raise TypeError(f"rocq: qweight must be uint8 bytes, got {qweight.dtype}")
        shape = _qweight_shape(info, out_features, in_features)
        if qweight.numel() != shape[0] * shape[1]:
            raise ValueError(
                f"rocq: qweight has {qweight.numel()} bytes but a {info.name} weight "
                f"[{out_features}, {in_features}] needs {shape[0] * shape[1]} ({list(shape)})"
            )
        if qweight.shape != shape:
            qweight = qweight.reshape(shape)
        if info.scale_plane:
            sshape = _scales_shape(info, out_features, in_features)
            if scales is None or scales.dtype != torch.uint8 or tuple(scales.shape) != sshape:
                got = None if scales is None else (scales.dtype, tuple(scales.shape))
                raise ValueError(f"rocq: {info.name} needs uint8 E8M0 scales {list(sshape)}, got {got}")
        else:
            scales = torch.empty(0, dtype=torch.uint8, device=qweight.device)
        if dtype is None:
            dtype = bias.dtype if bias is not None and bias.is_floating_point() else torch.get_default_dtype()
        m = cls(in_features, out_features, bias=bias is not None, qtype=info.id, device="meta", dtype=dtype)
        m.qweight = qweight
        m.scales = scales.to(qweight.device)
        if bias is not None:
            m.bias = nn.Parameter(bias.detach().to(device=qweight.device, dtype=dtype))
        return m

    # -- compute ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        return torch.ops.rocq.qmatmul(
            x, self.qweight, self.scales if self._has_scales else None, self.qtype,
            self.out_features, self.in_features, bias,
        )

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The weight ``[out_features, in_features]`` in ``dtype`` (default: the module's dtype)."""
        return torch.ops.rocq.dequantize(
            self.qweight, self.scales if self._has_scales else None, self.qtype,
            self.out_features, self.in_features, dtype or self.dtype,
        )

    def to_linear(self, dtype: torch.dtype | None = None) -> nn.Linear:
        """A plain ``nn.Linear`` with the dequantized weight."""
        dtype = dtype or self.dtype
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device="meta", dtype=dtype)
        lin.weight = nn.Parameter(self.dequantize(dtype))
        if self.bias is not None:
            lin.bias = nn.Parameter(self.bias.detach().to(dtype))
        return lin

    # -- bookkeeping --------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """Float dtype of the module (bias, default dequantize dtype); follows ``.to(dtype)``."""
        return self.bias.dtype if self.bias is not None else self._dtype

    @property
    def weight_nbytes(self) -> int:
        return self.qweight.numel() + self.scales.numel()

    @property
    def bits_per_weight(self) -> float:
        return format_info(self.qtype).bits_per_weight

    def _apply(self, fn, recurse=True):
        # Device moves apply to the quantized buffers; dtype conversions must not. nn.Module.to()
        # already skips integer tensors, but .type() or a custom fn would not: keep the bytes
        # out of fn's reach and only follow the device it moves float tensors to.
        qweight, scales = self._buffers.pop("qweight"), self._buffers.pop("scales")
        try:
            super()._apply(fn, recurse)
            probes = None
            try:
                probes = [fn(torch.empty(0, dtype=dt, device=qweight.device)) for dt in (torch.float32, torch.float16)]
            except Exception:  # fn that cannot take a probe: apply it and insist on uint8
                q2, s2 = fn(qweight), fn(scales)
                if q2.dtype != torch.uint8 or s2.dtype != torch.uint8:
                    raise TypeError("rocq.QuantLinear: the quantized buffers must stay uint8")
                qweight, scales = q2, s2
        finally:
            self._buffers["qweight"], self._buffers["scales"] = qweight, scales
        if probes is not None and all(isinstance(p, torch.Tensor) for p in probes):
            if probes[0].dtype == probes[1].dtype and probes[0].dtype.is_floating_point:
                self._dtype = probes[0].dtype
            dev = probes[0].device
            if dev != qweight.device:
                self._buffers["qweight"] = _move(qweight, dev)
                self._buffers["scales"] = _move(scales, dev)
        return self

    def extra_repr(self) -> str:
        info = format_info(self.qtype)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, qtype={info.name} ({info.bits_per_weight:.4g} bits/weight)"
        )


def _move(t: torch.Tensor, device) -> torch.Tensor:
    if t.device == device:
        return t
    if t.device.type == "meta" or device.type == "meta":
        return torch.empty_like(t, device=device)
    return t.to(device)


@torch.no_grad()
def _quantize_weight(w: torch.Tensor, qtype: int) -> tuple[torch.Tensor, torch.Tensor]:
    """rocq.quantize on the weight's device, or on the CPU when that device has no quantizer."""
    src = w.detach()
    src = (src if src.dtype == torch.float32 else src.float()).contiguous()
    try:
        q, s = torch.ops.rocq.quantize(src, format_info(qtype).id)
    except NotImplementedError:
        if src.device.type == "cpu":
            raise
        q, s = torch.ops.rocq.quantize(src.cpu(), format_info(qtype).id)
    return q.to(w.device), s.to(w.device)


# --------------------------------------------------------------------------------------------
# quantize_model
# --------------------------------------------------------------------------------------------
@dataclass
class QuantizeSummary:
    """What :func:`quantize_model` did."""

    converted: dict[str, str] = field(default_factory=dict)  # module name -> qtype name
    skipped: dict[str, str] = field(default_factory=dict)  # module name -> reason
    bytes_before: int = 0  # weight+bias bytes of the converted layers before
    bytes_after: int = 0  # qweight+scales+bias bytes after

    @property
    def layers_converted(self) -> int:
        return len(self.converted)

    @property
    def layers_skipped(self) -> int:
        return len(self.skipped)

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else float("nan")

    def __str__(self) -> str:
        by_type: dict[str, int] = {}
        for q in self.converted.values():
            by_type[q] = by_type.get(q, 0) + 1
        types = ", ".join(f"{k}: {v}" for k, v in sorted(by_type.items())) or "none"
        s = (
            f"rocq.quantize_model: {self.layers_converted} Linear layers converted ({types}), "
            f"{self.layers_skipped} skipped; {_fmt_bytes(self.bytes_before)} -> "
            f"{_fmt_bytes(self.bytes_after)} ({self.ratio:.2f}x smaller)"
        )
        for name, why in self.skipped.items():
            s += f"\n  skipped {name}: {why}"
        return s


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _matches(pattern: str, name: str) -> bool:
    """A module name matches a pattern if it equals it, ends with ``.pattern``, matches it as a
    glob (``*.mlp.*``), or as a regular expression (``re.search``)."""
    if name == pattern or name.endswith("." + pattern) or fnmatch.fnmatchcase(name, pattern):
        return True
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def plan_quantization(model: nn.Module, qtype, skip: Iterable[str] = ("lm_head",),
                      overrides: Mapping[str, object] | None = None, strict: bool = False):
    """Decide, per ``nn.Linear`` of ``model``, the qtype id to use (or why it is skipped).

    Returns a list of ``(name, module, qtype_id_or_None, reason)``. ``overrides`` maps a
    pattern (see :func:`_matches`) to a qtype, or to ``None`` to keep the layer unquantized;
    the first matching override wins, and overrides beat ``skip``.
    """
    default = format_info(qtype).id if qtype is not None else None
    skip = (skip,) if isinstance(skip, str) else tuple(skip or ())
    overrides = dict(overrides or {})
    plan = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        q, reason = default, None
        hit = next((p for p in overrides if _matches(p, name)), None)
        if hit is not None:
            q = overrides[hit]
            q = format_info(q).id if q is not None else None
            if q is None:
                reason = f"override {hit!r} keeps it in full precision"
        elif any(_matches(p, name) for p in skip):
            q, reason = None, "in skip list"
        if q is None and reason is None:
            reason = "no qtype"
        if q is not None:
            info = format_info(q)
            try:
                _check_k(info, mod.in_features, f"layer {name!r}")
            except ValueError as e:
                if strict:
                    raise
                warnings.warn(f"{e}; skipping it", stacklevel=3)
                q, reason = None, f"in_features={mod.in_features} not a multiple of {info.name} block size"
        plan.append((name, mod, q, reason))
    return plan


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _nbytes(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


def quantize_model(model: nn.Module, qtype="q4_k", skip: Iterable[str] = ("lm_head",),
                   overrides: Mapping[str, object] | None = None, progress: bool = True,
                   strict: bool = False) -> QuantizeSummary:
    """Replace the ``nn.Linear`` layers of ``model`` in place by :class:`QuantLinear`.

    Args:
        qtype: default format (name or id).
        skip: patterns of module names to leave in full precision (default: the LM head).
        overrides: ``{pattern: qtype or None}`` per-layer formats, e.g.
            ``{"*.down_proj": "q6_k", r"layers\\.0\\.": None}``.
        progress: show a tqdm bar (only when stderr is a terminal).
        strict: raise instead of skipping layers whose in_features is not a multiple of the block.

    Each layer is quantized on its own device (the CPU quantizer is used when the device has
    none) and its full-precision weight released before the next, so peak memory grows by one
    layer only. Returns a :class:`QuantizeSummary` (also printable).
    """
    plan = plan_quantization(model, qtype, skip, overrides, strict)
    summary = QuantizeSummary()
    todo = [(n, m, q) for n, m, q, _ in plan if q is not None]
    for n, _, q, why in plan:
        if q is None:
            summary.skipped[n] = why
    bar = None
    if progress and todo and sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="rocq: quantizing", unit="layer")
        except ImportError:
            bar = None
    try:
        for name, lin, q in todo:
            before = _nbytes(lin.weight) + _nbytes(lin.bias)
            new = QuantLinear.from_linear(lin, q)
            new.train(lin.training)
            _set_submodule(model, name, new)
            summary.converted[name] = format_info(q).name
            summary.bytes_before += before
            summary.bytes_after += _nbytes(new.qweight) + _nbytes(new.scales) + _nbytes(new.bias)
            del lin
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


# --------------------------------------------------------------------------------------------
# PEFT (LoRA) support
# --------------------------------------------------------------------------------------------
_LORA_CLS = None


def _lora_class():
    global _LORA_CLS
    if _LORA_CLS is not None:
        return _LORA_CLS
    from peft.tuners.lora.layer import LoraLayer

    class LoraQuantLinear(nn.Module, LoraLayer):
        """LoRA adapter on a frozen :class:`QuantLinear` (y = base(x) + B(A(dropout(x))) * s)."""

        def __init__(self, base_layer, adapter_name, config, r: int = 0, lora_alpha: int = 1, **kwargs):
            if getattr(config, "use_dora", False):
                raise ValueError("rocq.QuantLinear does not support DoRA")
            super().__init__()
            LoraLayer.__init__(self, base_layer)
            self._active_adapter = adapter_name
            self.update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config)

        def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            result = self.base_layer(x)
            if self.disable_adapters:
                return result
            for name in self.active_adapters:
                if name not in self.lora_A.keys():
                    continue
                A, B = self.lora_A[name], self.lora_B[name]
                out = B(A(self.lora_dropout[name](x.to(A.weight.dtype))))
                result = result + (out * self.scaling[name]).to(result.dtype)
            return result

        def merge(self, *args, **kwargs):
            raise AttributeError("merging a LoRA adapter into a quantized rocq.QuantLinear is not supported")

        def unmerge(self, *args, **kwargs):
            raise AttributeError("merging a LoRA adapter into a quantized rocq.QuantLinear is not supported")

        def __repr__(self) -> str:
            return "lora." + super().__repr__()

    _LORA_CLS = LoraQuantLinear
    return _LORA_CLS


def enable_peft(lora_config):
    """Teach a ``peft.LoraConfig`` to wrap :class:`QuantLinear` layers; returns the config.

    >>> cfg = rocq.nn.enable_peft(LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    >>> model = peft.get_peft_model(model, cfg)
    """
    lora_config._register_custom_module({QuantLinear: _lora_class()})
    return lora_config
