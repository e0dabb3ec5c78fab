"""The format table, read from the C++ descriptors in kernels/formats.h (never retyped here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from . import _C


@dataclass(frozen=True)
class Format:
    """One weight format rocq can hold.

    name: lower-case name ("q4_k"); id: the qtype integer (the ggml type id for GGUF formats,
    100+ for rocq's planar OCP MX formats); block_elems / block_bytes: elements and bytes of
    one block of qweight; scale_plane: True when the format's E8M0 scales live in a separate
    uint8 tensor [n, k/32]; can_quantize: rocq.quantize can produce it.
    """

    name: str
    id: int
    block_elems: int
    block_bytes: int
    scale_plane: bool
    can_quantize: bool

    @property
    def bits_per_weight(self) -> float:
        """Storage cost per weight, scale plane included."""
        return self.block_bytes * 8 / self.block_elems + (8 / 32 if self.scale_plane else 0.0)

    def row_bytes(self, k: int) -> int:
        """Bytes of one qweight row of k elements (k must be a multiple of block_elems)."""
        return k // self.block_elems * self.block_bytes


_TABLE: tuple[Format, ...] = tuple(Format(*row) for row in _C.format_table())
_BY_ID = {f.id: f for f in _TABLE}
_BY_NAME = {f.name: f for f in _TABLE}

QTypeLike = Union[int, str, "Format"]


def formats() -> list[Format]:
    """Every format compiled into this build, in table order."""
    return list(_TABLE)


def format_info(q: QTypeLike) -> Format:
    """The Format for a name ("Q4_K", "q4_k"), a qtype id (12), a gguf.GGMLQuantizationType or a Format."""
    if isinstance(q, Format):
        return q
    if isinstance(q, bool):
        raise TypeError(f"rocq: qtype must be a format name or id, got {q!r}")
    if isinstance(q, int):  # also gguf.GGMLQuantizationType (an IntEnum)
        f = _BY_ID.get(int(q))
        if f is None:
            raise ValueError(f"rocq: unknown qtype id {int(q)}; known: {_known()}")
        return f
    if isinstance(q, str):
        key = q.strip().lower()
        if key.isdigit():
            return format_info(int(key))
        f = _BY_NAME.get(key)
        if f is None:
            raise ValueError(f"rocq: unknown format name {q!r}; known: {_known()}")
        return f
    name = getattr(q, "name", None)  # enums from other libraries
    if isinstance(name, str):
        return format_info(name)
    raise TypeError(f"rocq: qtype must be a format name or id, got {type(q).__name__}")


def qtype(q: QTypeLike) -> int:
    """Maps a format name or id to its qtype id: rocq.qtype("q4_k") == 12."""
    return format_info(q).id


def _known() -> str:
    return ", ".join(f"{f.name}={f.id}" for f in _TABLE)
