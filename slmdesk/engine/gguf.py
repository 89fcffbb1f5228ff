"""Check a GGUF model file with bounded reads so a broken one fails clearly, not in llama.cpp."""

from __future__ import annotations

import io
import os
import re
import stat
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, Final, NoReturn

from slmdesk.engine.architectures import LLAMA_CPP_ARCHITECTURES
from slmdesk.errors import ModelFileError

__all__ = [
    "ArraySummary",
    "GGUFInfo",
    "read_gguf",
    "read_gguf_prefix",
    "supported_architectures",
]

GGUF_MAGIC: Final = b"GGUF"
# Version 1 used 32-bit counts and was dropped by llama.cpp; 2 and 3 share one layout
# (3 only added big-endian files, which llama.cpp cannot read on little-endian hosts).
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32

# Limits. llama.cpp's own limits are far looser (1 GiB strings, 2**30-element arrays);
# these are chosen so that every real model passes with a wide margin while a crafted
# header can never make us allocate or walk more than a few hundred MiB.
MAX_TENSOR_COUNT: Final = 65536 * 4
MAX_KV_COUNT: Final = 65536
MAX_KEY_LENGTH: Final = 65536
MAX_STRING_LENGTH: Final = 64 * 1024 * 1024
MAX_ARRAY_LENGTH: Final = 16_000_000
# Strings are walked one by one, so their total count bounds the time spent on metadata
# (the largest vocabularies plus merges are a few million).
MAX_TOTAL_STRING_ELEMENTS: Final = 32_000_000
MAX_KEPT_ARRAY_LENGTH: Final = 64
MAX_ALIGNMENT: Final = 1024 * 1024
GGML_MAX_DIMS: Final = 4
# ggml keeps tensor names in a char[64], so llama.cpp refuses names of 64 bytes or more.
GGML_MAX_NAME: Final = 64
# llama-hparams.h of the llama.cpp that llama-cpp-python 0.3.36 vendors.
LLAMA_MAX_LAYERS: Final = 512
LLAMA_MAX_EXPERTS: Final = 1024
MAX_TENSOR_ELEMENTS: Final = 2**63 - 1

# How much of the file one read pulls in; small fields are then served from memory.
_WINDOW: Final = 1024 * 1024

_TYPE_STRING: Final = 8
_TYPE_ARRAY: Final = 9
_TYPE_UINT32: Final = 4

# GGUF metadata value types that have a fixed size: type id -> (name, struct code).
_SCALAR_TYPES: Final[Mapping[int, tuple[str, str]]] = {
    0: ("u8", "B"),
    1: ("i8", "b"),
    2: ("u16", "H"),
    3: ("i16", "h"),
    4: ("u32", "I"),
    5: ("i32", "i"),
    6: ("f32", "f"),
    7: ("bool", "b"),
    10: ("u64", "Q"),
    11: ("i64", "q"),
    12: ("f64", "d"),
}
_TYPE_BOOL: Final = 7

# ggml tensor types: id -> (name, elements per block, bytes per block). Checked against
# ggml/include/ggml.h and the block structs of ggml/src/ggml-common.h in llama.cpp
# 0c1e57098bba43ac29e6e3b677cdceebdd22334f (llama-cpp-python 0.3.36).
GGML_TYPES: Final[Mapping[int, tuple[str, int, int]]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}

# Type ids that once existed; llama.cpp now refuses them, and saying so beats "unknown".
_REMOVED_GGML_TYPES: Final[Mapping[int, str]] = {
    4: "Q4_2",
    5: "Q4_3",
    31: "Q4_0_4_4",
    32: "Q4_0_4_8",
    33: "Q4_0_8_8",
    36: "IQ4_NL_4_4",
    37: "IQ4_NL_4_8",
    38: "IQ4_NL_8_8",
}

# llama.cpp's enum llama_ftype (include/llama.h), stored as general.file_type.
LLAMA_FILE_TYPES: Final[Mapping[int, str]] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}

# Quantization names as they appear in file names. Longest first so that "Q4_K_M" wins
# over "Q4_K"; a letter or digit on either side means it is part of another word.
_NAME_QUANTS: Final = sorted(
    {*LLAMA_FILE_TYPES.values(), "Q3_K", "Q4_K", "Q5_K", "Q8_K", "MXFP4"},
    key=len,
    reverse=True,
)
_QUANT_IN_NAME: Final = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, _NAME_QUANTS)) + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)

_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_HEADER: Final = struct.Struct("<4sIQQ")

# Smallest possible encodings, used to reject counts the rest of the file cannot hold
# before looping over them: a key/value pair is an empty-ish key (8-byte length + 1 byte),
# a type (4) and a 1-byte value; a tensor info is a name length (8), n_dims (4), one
# dimension (8), a type (4) and an offset (8).
_MIN_KV_BYTES: Final = 8 + 1 + 4 + 1
_MIN_TENSOR_INFO_BYTES: Final = 8 + 4 + 8 + 4 + 8


@dataclass(frozen=True)
class ArraySummary:
    """Stands in for a metadata array too long to keep (a vocabulary, token scores...)."""

    type_name: str
    length: int


@dataclass(frozen=True)
class GGUFInfo:
    """What a checked GGUF file says about itself.

    ``metadata`` holds scalars and strings as Python values, arrays of at most
    ``MAX_KEPT_ARRAY_LENGTH`` elements as tuples and longer arrays as ``ArraySummary``.
    """

    path: Path
    size_bytes: int
    version: int
    tensor_count: int
    metadata: dict[str, object]
    tensor_data_offset: int
    parameter_count: int | None = None
    alignment: int = DEFAULT_ALIGNMENT
    tensor_types: Mapping[str, int] = field(default_factory=dict)
    # Tensor name -> (offset of its data from the start of the file, bytes).
    tensors: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def _int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        # bool is an int subclass, but a flag is never a count.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return None

    def _str(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def _arch_int(self, suffix: str) -> int | None:
        arch = self.architecture
        return None if arch is None else self._int(f"{arch}.{suffix}")

    @property
    def architecture(self) -> str | None:
        return self._str("general.architecture")

    @property
    def name(self) -> str | None:
        return self._str("general.name")

    @property
    def licence(self) -> str | None:
        return self._str("general.license")

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def head_count(self) -> int | None:
        return self._head_count("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        # llama.cpp defaults the KV head count to the head count (no grouped-query attention).
        count = self._head_count("attention.head_count_kv")
        return self.head_count if count is None else count

    def _head_count(self, suffix: str) -> int | None:
        arch = self.architecture
        if arch is None:
            return None
        value = self.metadata.get(f"{arch}.{suffix}")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # Some architectures (e.g. OpenELM) give a count per layer.
        if isinstance(value, tuple):
            counts = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
            return max(counts) if counts else None
        return None

    @property
    def file_type(self) -> int | None:
        return self._int("general.file_type")

    @property
    def quantization(self) -> str | None:
        file_type = self.file_type
        if file_type is not None and file_type in LLAMA_FILE_TYPES:
            return LLAMA_FILE_TYPES[file_type]
        return quantization_from_name(self.path.name)

    @property
    def size_label(self) -> str | None:
        return self._str("general.size_label")

    @property
    def chat_template(self) -> str | None:
        return self._str("tokenizer.chat_template")

    @property
    def bos_token_id(self) -> int | None:
        return self._int("tokenizer.ggml.bos_token_id")

    @property
    def eos_token_id(self) -> int | None:
        return self._int("tokenizer.ggml.eos_token_id")

    @property
    def add_bos_token(self) -> bool | None:
        value = self.metadata.get("tokenizer.ggml.add_bos_token")
        return value if isinstance(value, bool) else None


def supported_architectures() -> frozenset[str]:
    """Architecture names the bundled llama.cpp can run."""
    return LLAMA_CPP_ARCHITECTURES


def quantization_from_name(file_name: str) -> str | None:
    """Guess the quantization from a file name such as ``model.Q4_K_M.gguf``."""
    match = _QUANT_IN_NAME.search(file_name)
    return match.group(1).upper() if match else None


def read_gguf(
    path: str | os.PathLike[str],
    *,
    known_architectures: Collection[str] | None = None,
) -> GGUFInfo:
    """Read the header, metadata and tensor list of a GGUF file and check them.

    Raises ``ModelFileError`` naming the file and the problem for anything llama.cpp
    would refuse or that could make a parser misbehave. Tensor data is not read.
    """
    file_path = Path(path)
    label = file_path.name or str(file_path)

    def fail(problem: str) -> NoReturn:
        raise ModelFileError(f"{label}: {problem}")

    try:
        st = file_path.stat()
    except (FileNotFoundError, NotADirectoryError):
        fail("file not found")
    except PermissionError:
        fail("permission denied (slmdesk cannot read the file)")
    except ValueError:
        # A NUL byte or similar in the path string.
        fail("is not a valid file path")
    except OSError as exc:
        fail(f"cannot read the file ({exc.strerror or exc})")
    if stat.S_ISDIR(st.st_mode):
        fail("is a directory, not a model file")
    # A FIFO or a device (/dev/zero) could block or never end; only plain files are read.
    if not stat.S_ISREG(st.st_mode):
        fail("is not a regular file")
    if st.st_size == 0:
        fail("file is empty (0 bytes), not a model file")

    try:
        with file_path.open("rb") as f:
            return _Parser(f, st.st_size, file_path, label).parse(known_architectures)
    except PermissionError:
        fail("permission denied (slmdesk cannot read the file)")
    except OSError as exc:
        fail(f"cannot read the file ({exc.strerror or exc})")


def read_gguf_prefix(
    data: bytes,
    *,
    file_size: int,
    label: str,
    known_architectures: Collection[str] | None = None,
) -> dict[str, object] | None:
    """Check the header and metadata of a GGUF file from its first bytes only.

    For a file that is not here yet (an HTTP Range reply of the first few MiB). Returns
    the metadata, or ``None`` when it goes on past the end of ``data`` (fetch more).
    Raises ``ModelFileError`` for what the full reader would refuse in that part,
    including an architecture outside ``known_architectures``. The tensor list is not read.
    """
    parser = _PrefixParser(data, file_size, label)
    try:
        _version, _tensors, kv_count = parser._header()
        parser._section = "metadata"
        metadata, _alignment = parser._metadata(kv_count)
        parser._check_architecture(metadata, known_architectures)
    except _NeedMoreBytes:
        return None
    return metadata


class _NeedMoreBytes(Exception):
    """The prefix ended before the part being read."""


def _quote(text: str) -> str:
    """Quote a name taken from the file for a message: short and printable."""
    if len(text) > 80:
        text = text[:77] + "..."
    return "'" + "".join(c if c.isprintable() else "?" for c in text) + "'"


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


class _Parser:
    """Little-endian reads over a window of the file, each checked against the bytes left."""

    def __init__(self, f: BinaryIO, size: int, path: Path, label: str) -> None:
        self._f = f
        self._size = size
        self._path = path
        self._label = label
        self._pos = 0
        self._win = b""
        self._win_start = 0
        self._section = "header"
        self._strings_left = MAX_TOTAL_STRING_ELEMENTS

    # -- errors ---------------------------------------------------------------------

    def _fail(self, problem: str) -> NoReturn:
        raise ModelFileError(f"{self._label}: {problem}")

    def _truncated(self, what: str | None = None) -> NoReturn:
        self._fail(f"file is truncated ({what or self._section} ends past the end of the file)")

    # -- bounded reads --------------------------------------------------------------

    @property
    def _remaining(self) -> int:
        return self._size - self._pos

    def _at(self, n: int) -> int:
        """Make the window hold the next ``n`` bytes and return where they start in it."""
        if n > self._size - self._pos:
            self._truncated()
        off = self._pos - self._win_start
        if off < 0 or off + n > len(self._win):
            self._f.seek(self._pos)
            self._win = self._f.read(min(max(n, _WINDOW), self._size - self._pos))
            self._win_start = self._pos
            if len(self._win) < n:
                # The file shrank after it was measured.
                self._truncated()
            off = 0
        return off

    def _take(self, n: int) -> bytes:
        off = self._at(n)
        self._pos += n
        # For n at least a window long the window is exactly these bytes, and slicing a
        # whole bytes object returns it without a copy.
        return self._win[off : off + n]

    def _skip(self, n: int) -> None:
        if n > self._size - self._pos:
            self._truncated()
        self._pos += n

    def _u32(self) -> int:
        off = self._at(4)
        self._pos += 4
        value: int = _U32.unpack_from(self._win, off)[0]
        return value

    def _u64(self) -> int:
        off = self._at(8)
        self._pos += 8
        value: int = _U64.unpack_from(self._win, off)[0]
        return value

    # -- sections -------------------------------------------------------------------

    def parse(self, known_architectures: Collection[str] | None) -> GGUFInfo:
        version, tensor_count, kv_count = self._header()
        self._section = "metadata"
        metadata, alignment = self._metadata(kv_count)
        self._check_architecture(metadata, known_architectures)
        self._section = "tensor list"
        tensors, parameters, types = self._tensor_infos(tensor_count, alignment)
        self._section = "tensor data"
        data_offset = _align(self._pos, alignment)
        if data_offset > self._size:
            self._truncated()
        self._check_layout(tensors, data_offset, alignment)
        return GGUFInfo(
            path=self._path,
            size_bytes=self._size,
            version=version,
            tensor_count=tensor_count,
            metadata=metadata,
            tensor_data_offset=data_offset,
            parameter_count=parameters,
            alignment=alignment,
            tensor_types=types,
            tensors={name: (data_offset + off, n) for off, n, name in tensors},
        )

    def _header(self) -> tuple[int, int, int]:
        magic = self._take(min(len(GGUF_MAGIC), self._size))
        if magic != GGUF_MAGIC[: len(magic)]:
            self._fail("not a GGUF model file (wrong magic bytes)")
        self._pos = 0
        if self._size < _HEADER.size:
            self._truncated()
        _, version, tensor_count, kv_count = _HEADER.unpack(self._take(_HEADER.size))

        if version not in SUPPORTED_VERSIONS:
            swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
            if version > 0xFFFF and swapped in SUPPORTED_VERSIONS:
                self._fail("big-endian GGUF files are not supported")
            if version == 1:
                self._fail(
                    "uses GGUF version 1, which is obsolete and no longer supported; "
                    "download or convert a newer copy of the model"
                )
            self._fail(f"unsupported GGUF version {version} (this slmdesk reads versions 2 and 3)")

        if tensor_count > MAX_TENSOR_COUNT:
            self._fail(
                f"claims {tensor_count:,} tensors (the limit is {MAX_TENSOR_COUNT:,}); "
                "the file is corrupt"
            )
        if kv_count > MAX_KV_COUNT:
            self._fail(
                f"claims {kv_count:,} metadata entries (the limit is {MAX_KV_COUNT:,}); "
                "the file is corrupt"
            )
        if tensor_count == 0:
            self._fail("contains no tensors (not a model)")
        # Cheap early answer for a header whose counts the file cannot possibly hold.
        if kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_INFO_BYTES > self._remaining:
            self._fail(
                f"file is truncated (its header lists {kv_count:,} metadata entries and "
                f"{tensor_count:,} tensors, more than the file can hold)"
            )
        return version, tensor_count, kv_count

    def _metadata(self, kv_count: int) -> tuple[dict[str, object], int]:
        metadata: dict[str, object] = {}
        alignment = DEFAULT_ALIGNMENT
        for index in range(kv_count):
            length = self._u64()
            if length == 0:
                self._fail(f"metadata entry {index} has an empty key; the file is corrupt")
            if length > MAX_KEY_LENGTH:
                self._fail(
                    f"metadata entry {index} has a key of {length:,} bytes "
                    f"(the limit is {MAX_KEY_LENGTH:,}); the file is corrupt"
                )
            raw = self._take(length)
            try:
                key = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._fail(
                    f"metadata entry {index} has a key that is not valid UTF-8; the file is corrupt"
                )
            if key in metadata:
                self._fail(f"metadata key {_quote(key)} appears twice; the file is corrupt")
            value_type = self._u32()
            value = self._value(key, value_type)
            if key == "general.alignment":
                # llama.cpp insists on u32 here and on a power of two.
                if value_type != _TYPE_UINT32 or not isinstance(value, int):
                    self._fail(
                        "general.alignment must be a 32-bit unsigned integer; the file is corrupt"
                    )
                if value <= 0 or value & (value - 1):
                    self._fail(
                        f"general.alignment is {value}, not a power of two; the file is corrupt"
                    )
                if value > MAX_ALIGNMENT:
                    self._fail(
                        f"general.alignment is {value:,}, more than the {MAX_ALIGNMENT:,} "
                        "slmdesk accepts; the file is corrupt"
                    )
                alignment = value
            metadata[key] = value
        return metadata, alignment

    def _value(self, key: str, value_type: int) -> object:
        if value_type == _TYPE_STRING:
            return self._string_value(key)
        if value_type == _TYPE_ARRAY:
            return self._array(key)
        scalar = _SCALAR_TYPES.get(value_type)
        if scalar is None:
            self._fail(
                f"metadata key {_quote(key)} has unknown value type {value_type}; "
                "the file is corrupt"
            )
        code = scalar[1]
        size = struct.calcsize("<" + code)
        off = self._at(size)
        self._pos += size
        value: object = struct.unpack_from("<" + code, self._win, off)[0]
        # llama.cpp reads a bool as a byte and treats any non-zero byte as true.
        return value != 0 if value_type == _TYPE_BOOL else value

    def _string_length(self, key: str) -> int:
        length = self._u64()
        if length > MAX_STRING_LENGTH or length > self._remaining:
            self._string_too_long(key, length)
        return length

    def _string_value(self, key: str) -> str:
        # Broken text in a value is not worth refusing a model over; keys are stricter.
        return self._take(self._string_length(key)).decode("utf-8", errors="replace")

    def _array(self, key: str) -> object:
        element_type = self._u32()
        count = self._u64()
        if element_type == _TYPE_ARRAY:
            # The GGUF spec allows nesting, but llama.cpp's reader refuses it outright.
            self._fail(
                f"metadata key {_quote(key)} holds an array of arrays, which llama.cpp cannot read"
            )
        if element_type == _TYPE_STRING:
            type_name, code, element_size = "string", "", 8
        elif element_type in _SCALAR_TYPES:
            type_name, code = _SCALAR_TYPES[element_type]
            element_size = struct.calcsize("<" + code)
        else:
            self._fail(
                f"metadata key {_quote(key)} is an array of unknown type {element_type}; "
                "the file is corrupt"
            )
        if count > MAX_ARRAY_LENGTH:
            self._fail(
                f"metadata key {_quote(key)} claims an array of {count:,} elements "
                f"(the limit is {MAX_ARRAY_LENGTH:,}); the file is corrupt"
            )
        # Checked before reading or skipping anything: the minimum the array can occupy.
        if count * element_size > self._remaining:
            self._truncated()

        if element_type == _TYPE_STRING:
            self._strings_left -= count
            if self._strings_left < 0:
                self._fail(
                    f"metadata holds more than {MAX_TOTAL_STRING_ELEMENTS:,} strings in "
                    "arrays; the file is corrupt"
                )
            if count <= MAX_KEPT_ARRAY_LENGTH:
                return tuple(self._string_value(key) for _ in range(count))
            self._skip_strings(count, key)
            return ArraySummary(type_name, count)

        nbytes = count * element_size
        if count > MAX_KEPT_ARRAY_LENGTH:
            self._skip(nbytes)
            return ArraySummary(type_name, count)
        off = self._at(nbytes)
        self._pos += nbytes
        values = struct.unpack_from(f"<{count}{code}", self._win, off)
        if element_type == _TYPE_BOOL:
            return tuple(v != 0 for v in values)
        return tuple(values)

    def _skip_strings(self, count: int, key: str) -> None:
        """Walk past ``count`` strings reading only their lengths.

        This is the hot loop for vocabularies of 100k+ tokens, so the window is held in
        locals and refilled only when the next length field is not in it.
        """
        unpack = _U64.unpack_from
        size = self._size
        pos = self._pos
        win = self._win
        base = self._win_start
        end = base + len(win)
        for _ in range(count):
            if pos < base or pos + 8 > end:
                self._pos = pos
                self._at(8)
                win = self._win
                base = self._win_start
                end = base + len(win)
            length: int = unpack(win, pos - base)[0]
            pos += 8
            if length > MAX_STRING_LENGTH or length > size - pos:
                self._pos = pos
                self._string_too_long(key, length)
            pos += length
        self._pos = pos

    def _string_too_long(self, key: str, length: int) -> NoReturn:
        if length > MAX_STRING_LENGTH:
            self._fail(
                f"metadata key {_quote(key)} claims a string of {length:,} bytes "
                "(the limit is 64 MiB); the file is corrupt"
            )
        self._truncated()

    def _check_architecture(
        self, metadata: Mapping[str, object], known: Collection[str] | None
    ) -> str:
        architecture = metadata.get("general.architecture")
        if architecture is None:
            self._fail("has no general.architecture entry, so it is not a model slmdesk can load")
        if not isinstance(architecture, str) or not architecture:
            self._fail("general.architecture is not a name; the file is corrupt")
        if known is not None and architecture not in known:
            self._fail(
                f"architecture {_quote(architecture)} is not supported by the installed "
                "llama.cpp (needs a newer engine)"
            )
        self._check_hyperparameters(metadata, architecture)
        return architecture

    def _check_hyperparameters(self, metadata: Mapping[str, object], arch: str) -> None:
        """Refuse layer and expert counts that llama.cpp asserts on while it reads them.

        llama.cpp checks these with GGML_ASSERT in llama_model::load_hparams, which aborts
        the whole process instead of failing the load (llama-model.cpp, 0.3.36's vendored
        copy). Other asserts remain possible; the load guard (slmdesk.loadguard) covers
        what this cannot foresee.
        """

        def count(key: str) -> int | None:
            value = metadata.get(f"{arch}.{key}")
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, tuple) and value and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value):
                return int(max(value))  # per-layer arrays: llama.cpp checks the largest
            return None

        layers = count("block_count")
        if layers is not None and not 0 < layers <= LLAMA_MAX_LAYERS:
            self._fail(f"says it has {layers:,} layers (llama.cpp supports 1 to "
                       f"{LLAMA_MAX_LAYERS}); the file is corrupt or not supported")
        nextn = count("nextn_predict_layers")
        if nextn is not None and layers is not None and nextn > layers:
            self._fail(f"has {nextn} prediction layers but only {layers} layers; "
                       "the file is corrupt")
        experts = count("expert_count") or 0
        used = count("expert_used_count") or 0
        groups = count("expert_group_count") or 0
        if experts > LLAMA_MAX_EXPERTS:
            self._fail(f"says it has {experts:,} experts (llama.cpp supports at most "
                       f"{LLAMA_MAX_EXPERTS}); the file is corrupt or not supported")
        if used > experts or (experts > 0 and used == 0):
            self._fail(f"uses {used} of {experts} experts per token, which llama.cpp "
                       "cannot run; the file is corrupt")
        group_used = count("expert_group_used_count") or 0
        if groups and (experts == 0 or groups >= experts or (groups > 1 and (
                experts % groups or not 0 < group_used < groups))):
            self._fail(f"splits {experts} experts into {groups} groups, which llama.cpp "
                       "cannot run; the file is corrupt")

    def _tensor_infos(
        self, tensor_count: int, alignment: int
    ) -> tuple[list[tuple[int, int, str]], int, dict[str, int]]:
        tensors: list[tuple[int, int, str]] = []
        seen: set[str] = set()
        types: dict[str, int] = {}
        parameters = 0
        for index in range(tensor_count):
            length = self._u64()
            if length >= GGML_MAX_NAME:
                self._fail(
                    f"tensor {index} has a name of {length:,} bytes "
                    f"(llama.cpp allows at most {GGML_MAX_NAME - 1}); the file is corrupt"
                )
            name = self._take(length).decode("utf-8", errors="replace")
            shown = _quote(name)
            if name in seen:
                self._fail(f"tensor {shown} appears twice; the file is corrupt")
            seen.add(name)

            n_dims = self._u32()
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                self._fail(
                    f"tensor {shown} has {n_dims} dimensions (llama.cpp allows 1 to "
                    f"{GGML_MAX_DIMS}); the file is corrupt"
                )
            dims = [self._u64() for _ in range(n_dims)]
            elements = 1
            for dim in dims:
                if dim == 0:
                    self._fail(f"tensor {shown} has a dimension of size 0; the file is corrupt")
                elements *= dim
            # Python ints do not overflow; llama.cpp's int64 element count would.
            if elements > MAX_TENSOR_ELEMENTS:
                self._fail(f"tensor {shown} has an impossible shape {dims}; the file is corrupt")

            type_id = self._u32()
            traits = GGML_TYPES.get(type_id)
            if traits is None:
                removed = _REMOVED_GGML_TYPES.get(type_id)
                if removed is not None:
                    self._fail(
                        f"tensor {shown} uses tensor type {type_id} ({removed}), which "
                        "llama.cpp no longer supports; download a newer copy of the model"
                    )
                self._fail(
                    f"tensor {shown} uses tensor type {type_id} that this engine does not know"
                )
            type_name, block_size, type_size = traits
            if dims[0] % block_size:
                self._fail(
                    f"tensor {shown} has rows of {dims[0]:,} elements, not a multiple of "
                    f"the {type_name} block size {block_size}; the file is corrupt"
                )
            nbytes = elements // block_size * type_size

            offset = self._u64()
            if offset % alignment:
                self._fail(
                    f"tensor {shown} starts at offset {offset:,}, which is not a multiple "
                    f"of the alignment {alignment}; the file is corrupt"
                )
            tensors.append((offset, nbytes, name))
            types[type_name] = types.get(type_name, 0) + 1
            parameters += elements
        return tensors, parameters, types

    def _check_layout(
        self, tensors: list[tuple[int, int, str]], data_offset: int, alignment: int
    ) -> None:
        data_size = self._size - data_offset
        for offset, nbytes, name in tensors:
            if offset + nbytes > data_size:
                self._truncated(f"tensor data of {_quote(name)}")

        by_offset = sorted(tensors)
        for (offset_a, nbytes_a, name_a), (offset_b, _, name_b) in pairwise(by_offset):
            if offset_a + nbytes_a > offset_b:
                self._fail(
                    f"tensors {_quote(name_a)} and {_quote(name_b)} overlap in the file; "
                    "the file is corrupt"
                )

        # llama.cpp also requires the tensors to follow each other in listed order, each
        # padded to the alignment, and refuses the file otherwise.
        expected = 0
        for offset, nbytes, name in tensors:
            if offset != expected:
                self._fail(
                    f"tensor {_quote(name)} starts at data offset {offset:,} where llama.cpp "
                    f"expects {expected:,}; the file is corrupt"
                )
            expected += _align(nbytes, alignment)


class _PrefixParser(_Parser):
    """A parser over the first bytes of a file whose full size is known.

    Counts are checked against the full size; a read past the prefix is "fetch more",
    not "truncated", unless the prefix is the whole file.
    """

    def __init__(self, data: bytes, file_size: int, label: str) -> None:
        super().__init__(io.BytesIO(data), max(file_size, len(data)), Path(label), label)
        self._have = len(data)

    def _truncated(self, what: str | None = None) -> NoReturn:
        if self._have < self._size:
            raise _NeedMoreBytes
        super()._truncated(what)
