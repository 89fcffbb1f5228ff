"""Write a small GGUF LoRA adapter for the 135M model in a second, without training one: the
shape llama.cpp's converter writes (general.type "adapter", lora_a/lora_b pairs), for tests of
what a fine-tune does in the app rather than of what training learns."""

from __future__ import annotations

from pathlib import Path

import pytest

# SmolLM2-135M: the embedding width, and the output width of the attention's q projection.
WIDTH = 576
RANK = 4


def write_lora_adapter(path: Path, *, blocks: int = 2, seed: int = 0) -> Path:
    """An adapter on the q projection of the first ``blocks`` blocks, small random weights
    (it changes the model a little, as a first fine-tune does); skips without ``gguf``."""
    gguf = pytest.importorskip("gguf", reason="the gguf package comes with slmdesk[train]")
    import numpy as np

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(RANK))
    for block in range(blocks):
        name = f"blk.{block}.attn_q.weight"
        # numpy's (rows, columns) is ggml's (ne[1], ne[0]): lora_a is ne [WIDTH, RANK],
        # lora_b ne [RANK, WIDTH], as llama.cpp's adapter loader checks.
        writer.add_tensor(f"{name}.lora_a",
                          (rng.standard_normal((RANK, WIDTH)) * 0.01).astype(np.float32))
        writer.add_tensor(f"{name}.lora_b",
                          (rng.standard_normal((WIDTH, RANK)) * 0.01).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
