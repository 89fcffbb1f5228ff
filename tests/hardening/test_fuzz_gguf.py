"""Fuzz the GGUF validator: structured mutations of valid files (bit flips, truncation, forged
counts and lengths, random metadata) either pass as a self-consistent GGUFInfo or are refused
with ModelFileError, never another exception, never a read past the end, never a hang.

Bounded for CI (about 20-30 s on two cores, derandomized so a run is reproducible); set
SLMDESK_FUZZ_EXAMPLES to fuzz longer locally.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmdesk.engine import gguf as gguf_module
from slmdesk.engine.gguf import (
    MAX_ALIGNMENT,
    MAX_KEPT_ARRAY_LENGTH,
    SUPPORTED_VERSIONS,
    ArraySummary,
    GGUFInfo,
    read_gguf,
)
from slmdesk.errors import ModelFileError
from tests.gguf_factory import (
    ARRAY,
    BOOL,
    F32,
    F64,
    GGML_F16,
    GGML_F32,
    GGML_Q4_0,
    GGML_Q4_1,
    GGML_Q4_K,
    GGML_Q6_K,
    GGML_Q8_0,
    I8,
    I16,
    I32,
    I64,
    STRING,
    U8,
    U16,
    U32,
    U64,
    ArrayOf,
    RawValue,
    Typed,
    write_gguf,
)

EXAMPLES = int(os.environ.get("SLMDESK_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 500,
    # A hang shows up as a missed deadline; generous, because CI cores are shared.
    deadline=5_000,
    derandomize=EXAMPLES is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)

_BLOCKS = {GGML_F32: 1, GGML_F16: 1, GGML_Q4_0: 32, GGML_Q4_1: 32, GGML_Q8_0: 32,
           GGML_Q4_K: 256, GGML_Q6_K: 256}
_RANGES = {U8: (0, 255), I8: (-128, 127), U16: (0, 2**16 - 1), I16: (-(2**15), 2**15 - 1),
           U32: (0, 2**32 - 1), I32: (-(2**31), 2**31 - 1), U64: (0, 2**64 - 1),
           I64: (-(2**63), 2**63 - 1)}
# Values a forged count or length field is likely to take in a crafted file.
_EDGE_U64 = [0, 1, 2, 7, 8, 63, 64, 65, 255, 4096, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
             2**63 - 1, 2**63, 2**64 - 1]


def _typed_scalar(value_type: int) -> st.SearchStrategy[Any]:
    if value_type in _RANGES:
        lo, hi = _RANGES[value_type]
        return st.integers(lo, hi)
    if value_type in (F32, F64):
        width = 32 if value_type == F32 else 64
        return st.floats(allow_nan=True, allow_infinity=True, width=width)
    if value_type == BOOL:
        return st.booleans()
    return st.text(max_size=40)


_scalar_types = st.sampled_from([U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, U64, I64, F64])


@st.composite
def _value(draw: st.DrawFn, forge: bool) -> object:
    kinds = ["scalar", "array", "long_array", "nested"] + (["raw"] * forge)
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        value_type = draw(_scalar_types)
        return Typed(value_type, draw(_typed_scalar(value_type)))
    if kind in ("array", "long_array"):
        element_type = draw(_scalar_types)
        size = (draw(st.integers(MAX_KEPT_ARRAY_LENGTH + 1, 200)) if kind == "long_array"
                else draw(st.integers(0, 8)))
        items = draw(st.lists(_typed_scalar(element_type), min_size=size, max_size=size))
        return ArrayOf(element_type, items)
    if kind == "nested":
        return ArrayOf(ARRAY, [ArrayOf(U8, [1, 2])])
    # A type id (possibly unknown) followed by arbitrary bytes: forged lengths and counts.
    value_type = draw(st.integers(0, 15))
    payload = draw(st.one_of(
        st.binary(max_size=24),
        st.sampled_from(_EDGE_U64).map(lambda n: struct.pack("<Q", n)),
        st.tuples(st.sampled_from([U8, STRING, U64, 13]), st.sampled_from(_EDGE_U64)).map(
            lambda t: struct.pack("<IQ", *t)),
    ))
    return RawValue(value_type, payload)


@st.composite
def _tensor(draw: st.DrawFn, index: int) -> tuple[str, tuple[int, ...], int]:
    ggml_type = draw(st.sampled_from(sorted(_BLOCKS)))
    first = _BLOCKS[ggml_type] * draw(st.integers(1, 4))
    rest = draw(st.lists(st.integers(1, 5), max_size=3))
    return (f"blk.{index}.weight", (first, *rest), ggml_type)


@st.composite
def gguf_bytes(draw: st.DrawFn, forge: bool = False) -> bytes:
    """A GGUF file built by the independent test factory; ``forge`` adds values written
    as a type id plus arbitrary bytes (forged lengths and counts)."""
    metadata: dict[str | bytes, object] = {}
    if draw(st.integers(0, 9)):  # mostly present: without it the reader stops early
        metadata["general.architecture"] = draw(
            st.sampled_from(["llama", "qwen2", "gemma3", "", "no-such-arch"]))
    for i in range(draw(st.integers(0, 6))):
        key = draw(st.sampled_from([f"x.key{i}", "general.name", "llama.context_length",
                                    "tokenizer.chat_template", "llama.attention.head_count"]))
        metadata.setdefault(key, draw(_value(forge)))
    alignment = draw(st.sampled_from([1, 8, 32, 64, 4096]))
    tensors = [draw(_tensor(i)) for i in range(draw(st.integers(1, 4)))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.gguf"
        write_gguf(path, metadata=metadata, tensors=tensors,
                   version=draw(st.sampled_from([2, 3])), alignment=alignment,
                   write_alignment_key=alignment != 32 or draw(st.booleans()))
        return path.read_bytes()


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with a few structured mutations applied."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "truncate", "u64", "u32", "byte", "insert",
                                   "delete", "append"]))
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "u64" and at + 8 <= len(data):
            data[at : at + 8] = struct.pack("<Q", draw(st.sampled_from(_EDGE_U64)))
        elif op == "u32" and at + 4 <= len(data):
            data[at : at + 4] = struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
        elif op == "byte":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data += draw(st.binary(max_size=64))
    return bytes(data)


class _BoundsCheckedFile(io.FileIO):
    """A file that fails the test when the reader asks for bytes past its end."""

    def read(self, size: int = -1, /) -> bytes:
        remaining = os.fstat(self.fileno()).st_size - self.tell()
        assert size >= 0, "unbounded read()"
        assert size <= max(remaining, 0), f"read({size}) with {remaining} bytes left"
        return super().read(size)


@contextmanager
def _checked_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_open = Path.open

    def open_checked(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "rb":
            return real_open(self, mode, *args, **kwargs)
        return _BoundsCheckedFile(self, "rb")

    with monkeypatch.context() as m:
        m.setattr(gguf_module.Path, "open", open_checked)
        yield


def _check_outcome(data: bytes, path: Path) -> GGUFInfo | None:
    path.write_bytes(data)
    try:
        info = read_gguf(path)
    except ModelFileError as exc:
        # The message names the file and says something a person can act on.
        assert str(exc).startswith(f"{path.name}: ") and len(str(exc)) > len(path.name) + 5
        return None
    _assert_consistent(info, len(data))
    return info


def _assert_consistent(info: GGUFInfo, size: int) -> None:
    assert isinstance(info, GGUFInfo)
    assert info.size_bytes == size
    assert info.version in SUPPORTED_VERSIONS
    assert 0 < info.alignment <= MAX_ALIGNMENT and info.alignment & (info.alignment - 1) == 0
    assert info.tensor_data_offset % info.alignment == 0
    assert 0 < info.tensor_data_offset <= size
    assert info.tensor_count >= 1
    assert sum(info.tensor_types.values()) == info.tensor_count
    assert info.parameter_count is not None and info.parameter_count >= info.tensor_count
    assert isinstance(info.architecture, str) and info.architecture
    for key, value in info.metadata.items():
        assert isinstance(key, str) and key
        if isinstance(value, tuple):
            assert len(value) <= MAX_KEPT_ARRAY_LENGTH
        elif isinstance(value, ArraySummary):
            assert value.length > MAX_KEPT_ARRAY_LENGTH
        else:
            assert isinstance(value, (int, float, str, bool))
    # The typed accessors never raise on whatever the file held.
    for name in ("name", "licence", "context_length", "block_count", "embedding_length",
                 "head_count", "head_count_kv", "file_type", "quantization", "size_label",
                 "chat_template", "bos_token_id", "eos_token_id", "add_bos_token"):
        getattr(info, name)


@FUZZ
@given(data=gguf_bytes())
def test_well_formed_files_are_accepted(data: bytes, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "valid.gguf"
    path.write_bytes(data)
    try:
        info = read_gguf(path)
    except ModelFileError as exc:
        # Only what the factory may legitimately produce and llama.cpp would refuse.
        allowed = ("general.architecture", "array of arrays", "unknown value type",
                   "array of unknown type", "not a name", "appears twice")
        assert any(a in str(exc) for a in allowed), str(exc)
        return
    _assert_consistent(info, len(data))


@settings(FUZZ, max_examples=EXAMPLES or 2000)
@given(data=mutated(gguf_bytes(forge=True)))
def test_mutated_files_are_refused_cleanly_or_read_consistently(
    data: bytes, tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "mutated.gguf"
    with _checked_reads(monkeypatch):
        _check_outcome(data, path)


@pytest.fixture(scope="module")
def real_header(model_path: Path) -> bytes:
    """The start of the real 135M model: header, 49k-token vocabulary, tensor list."""
    info = read_gguf(model_path)
    with model_path.open("rb") as f:
        return f.read(info.tensor_data_offset + 4096)


@pytest.mark.model
@settings(FUZZ, max_examples=EXAMPLES or 300)
@given(data=st.data())
def test_mutations_of_the_real_models_header(
    data: Any, real_header: bytes, tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = data.draw(mutated(st.just(real_header)))
    path = tmp_path_factory.mktemp("fuzz") / "real.gguf"
    with _checked_reads(monkeypatch):
        # Cut before its tensor data, so whatever survives the mutation is still refused
        # as truncated: the point is that nothing else goes wrong on the way there.
        assert _check_outcome(blob, path) is None
