"""Write small GGUF files, valid or deliberately broken, for tests of the GGUF reader.

It is kept independent of ``slmdesk.engine.gguf`` (its own type tables, its own layout
code) so that a mistake in the reader cannot hide behind the same mistake here.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# GGUF metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR_CODES = {
    U8: "B",
    I8: "b",
    U16: "H",
    I16: "h",
    U32: "I",
    I32: "i",
    F32: "f",
    BOOL: "?",
    U64: "Q",
    I64: "q",
    F64: "d",
}

# ggml tensor types used by the tests: id -> (elements per block, bytes per block).
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K = 0, 1, 2, 3, 8, 12, 14
_GGML_BLOCKS = {
    GGML_F32: (1, 4),
    GGML_F16: (1, 2),
    GGML_Q4_0: (32, 18),
    GGML_Q4_1: (32, 20),
    GGML_Q8_0: (32, 34),
    GGML_Q4_K: (256, 144),
    GGML_Q6_K: (256, 210),
}


@dataclass(frozen=True)
class Typed:
    """A metadata value with an explicit GGUF type (e.g. ``Typed(U64, 5)``)."""

    type: int
    value: object


@dataclass(frozen=True)
class ArrayOf:
    """A metadata array with an explicit element type; elements may be ``ArrayOf`` too."""

    element_type: int
    items: Sequence[object]


@dataclass(frozen=True)
class RawValue:
    """A value written as its type id followed by ``payload`` verbatim, to forge lengths."""

    type: int
    payload: bytes


@dataclass
class Layout:
    """Where each part of a written file starts, for tests that cut or patch it."""

    size: int = 0
    header_end: int = 0
    kv_starts: list[int] = field(default_factory=list)
    value_starts: dict[str, int] = field(default_factory=dict)
    tensor_info_start: int = 0
    tensor_info_starts: list[int] = field(default_factory=list)
    data_start: int = 0
    tensor_offsets: list[int] = field(default_factory=list)


def tensor_nbytes(dims: Sequence[int], ggml_type: int) -> int:
    """Bytes of tensor data; unknown types count as one byte per element."""
    elements = 1
    for d in dims:
        elements *= d
    block, size = _GGML_BLOCKS.get(ggml_type, (1, 1))
    return elements // block * size


class _Out:
    def __init__(self, endian: str) -> None:
        self.buf = bytearray()
        self.endian = endian

    def pack(self, code: str, *values: object) -> None:
        self.buf += struct.pack(self.endian + code, *values)

    def string(self, text: str | bytes) -> None:
        raw = text.encode("utf-8") if isinstance(text, str) else text
        self.pack("Q", len(raw))
        self.buf += raw


def _infer_type(value: object) -> int:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        if 0 <= value < 2**32:
            return U32
        return U64 if value >= 0 else I64
    if isinstance(value, float):
        return F32
    if isinstance(value, (str, bytes)):
        return STRING
    if isinstance(value, (list, tuple, ArrayOf)):
        return ARRAY
    raise TypeError(f"cannot infer a GGUF type for {value!r}")


def _write_payload(out: _Out, value_type: int, value: object) -> None:
    """Write a value (without its type id) of ``value_type``."""
    if value_type == STRING:
        assert isinstance(value, (str, bytes))
        out.string(value)
    elif value_type == ARRAY:
        if isinstance(value, ArrayOf):
            element_type, items = value.element_type, value.items
        else:
            assert isinstance(value, (list, tuple))
            items = value
            element_type = _infer_type(items[0]) if items else U32
        out.pack("I", element_type)
        out.pack("Q", len(items))
        for item in items:
            _write_payload(out, element_type, item)
    else:
        out.pack(_SCALAR_CODES[value_type], value)


def write_gguf(
    path: Path,
    *,
    metadata: Mapping[str | bytes, object],
    tensors: Sequence[tuple[str, Sequence[int], int]],
    version: int = 3,
    alignment: int = 32,
    write_alignment_key: bool = False,
    magic: bytes = b"GGUF",
    big_endian: bool = False,
    tensor_count: int | None = None,
    kv_count: int | None = None,
    tensor_offsets: Sequence[int] | None = None,
    data_size: int | None = None,
) -> Layout:
    """Write a GGUF file and return where its parts are.

    ``metadata`` values are typed from their Python type (int -> u32, float -> f32,
    str -> string, list -> array) unless wrapped in ``Typed``/``ArrayOf``/``RawValue``;
    a bytes key is written as is (to forge invalid UTF-8). ``tensors`` are
    ``(name, dims, ggml_type)`` laid out back to back, each padded to ``alignment``,
    with no padding after the last. The knobs after ``big_endian`` override what the
    header and the tensor list claim without changing what is written.
    """
    out = _Out(">" if big_endian else "<")
    layout = Layout()
    out.buf += magic
    out.pack("I", version)
    out.pack("Q", len(tensors) if tensor_count is None else tensor_count)
    items = list(metadata.items())
    if write_alignment_key:
        items.append(("general.alignment", Typed(U32, alignment)))
    out.pack("Q", len(items) if kv_count is None else kv_count)
    layout.header_end = len(out.buf)

    for key, value in items:
        layout.kv_starts.append(len(out.buf))
        out.string(key)
        name = key if isinstance(key, str) else key.decode("utf-8", "replace")
        layout.value_starts[name] = len(out.buf)
        if isinstance(value, RawValue):
            out.pack("I", value.type)
            out.buf += value.payload
        elif isinstance(value, Typed):
            out.pack("I", value.type)
            _write_payload(out, value.type, value.value)
        else:
            value_type = _infer_type(value)
            out.pack("I", value_type)
            _write_payload(out, value_type, value)

    sizes = [tensor_nbytes(dims, ggml_type) for _, dims, ggml_type in tensors]
    offsets: list[int] = []
    running = 0
    for size in sizes:
        offsets.append(running)
        running += (size + alignment - 1) // alignment * alignment
    if tensor_offsets is not None:
        offsets = list(tensor_offsets)
    layout.tensor_offsets = offsets

    layout.tensor_info_start = len(out.buf)
    for (name, dims, ggml_type), offset in zip(tensors, offsets, strict=True):
        layout.tensor_info_starts.append(len(out.buf))
        out.string(name)
        out.pack("I", len(dims))
        for d in dims:
            out.pack("Q", d)
        out.pack("I", ggml_type)
        out.pack("Q", offset)

    pad = -len(out.buf) % alignment
    out.buf += b"\0" * pad
    layout.data_start = len(out.buf)

    if sizes:
        natural = running - (-sizes[-1] % alignment)
    else:
        natural = 0
    total = natural if data_size is None else data_size
    # A recognisable, non-zero pattern, so that nothing can pass by reading zeros.
    out.buf += (b"\x5a\xa5" * (total // 2 + 1))[:total]
    layout.size = len(out.buf)
    path.write_bytes(bytes(out.buf))
    return layout


def damage_one_weight_block(src: Path, dst: Path, tensor: str = "blk.0.ffn_down.weight") -> None:
    """Copy a real GGUF and flip one bit in the first quantization block of ``tensor``.

    The bit is the top exponent bit of the block's f16 scale (the first two bytes of a
    Q4_0/Q4_1/Q8_0 block), so 32 weights of one row grow about 65,000-fold: what one bad
    bit in a download or on a disk does. The header stays valid: llama.cpp loads the file.
    """
    import shutil

    from slmdesk.engine.gguf import read_gguf

    shutil.copyfile(src, dst)
    offset, _size = read_gguf(dst).tensors[tensor]
    with open(dst, "r+b") as f:
        f.seek(offset)
        (scale,) = struct.unpack("<H", f.read(2))
        f.seek(offset)
        f.write(struct.pack("<H", scale ^ 0x4000))
