"""A registered model for unit tests that need one (no file behind it)."""

from __future__ import annotations

from typing import Any

from slmdesk.store import ModelRecord, ModelRepository


def tiny_model(db: Any) -> ModelRecord:
    return ModelRepository(db).add(
        name="Tiny", path="/models/tiny.gguf", size_bytes=10, architecture="llama",
        quantization="Q4_1", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )
