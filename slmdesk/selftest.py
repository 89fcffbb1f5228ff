"""`slmdesk --self-test`: imports, backend, code highlighting, database, a short real
generation, the model's numeric fingerprint and a classification."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from slmdesk import __version__


class _SelfTest:
    """The checks, run in order; later ones use what earlier ones opened or loaded."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.results: list[tuple[str, bool, str]] = []
        self.core: Any = None
        self.model: Any = None
        self.engine: Any = None

    def check(self, name: str, fn: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail = fn()
            self.results.append((name, True, f"{detail} ({time.perf_counter() - started:.2f} s)"))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none escapes
            self.results.append((name, False, f"{type(exc).__name__}: {exc}"))

    def run(self) -> None:
        self.check("backend", self.backend)
        self.check("code highlighting", self.highlighting)
        self.check("database", self.database)
        self.check("starter model", self.starter_model)
        self.check("generation", self.generation)
        self.check("fingerprint", self.fingerprint)
        self.check("classification", self.classification)
        if self.engine is not None:
            self.engine.unload()
        if self.core is not None:
            self.core.db.close()

    @staticmethod
    def backend() -> str:
        from slmdesk.engine.backend import backend_info

        b = backend_info()
        if not b.available:
            raise RuntimeError(b.error)
        return f"{b.label}, llama-cpp-python {b.llama_cpp_python_version}"

    @staticmethod
    def highlighting() -> str:
        # The chat view finds lexers and styles by name at run time (a frozen app must
        # carry them).
        from pygments.lexers import get_lexer_by_name
        from pygments.styles import get_style_by_name
        from pygments.token import Keyword

        lexer = get_lexer_by_name("python")
        get_style_by_name("monokai")
        get_style_by_name("default")
        tokens = list(lexer.get_tokens("def f():\n    return 1\n"))
        if not any(t in Keyword for t, _ in tokens):
            raise RuntimeError("Python code was not highlighted")
        return f"{lexer.name}, {len(tokens)} tokens"

    def database(self) -> str:
        from slmdesk.startup import open_core
        from slmdesk.store.db import integrity_check

        self.core = open_core(self.home)
        return f"integrity {integrity_check(self.core.db)}"

    def starter_model(self) -> str:
        from slmdesk.catalog.registry import resolve_model

        self.model = resolve_model(self.core.db)
        return f"{self.model.name}"

    def generation(self) -> str:
        from slmdesk.engine.llama_engine import LlamaEngine
        from slmdesk.engine.params import LoadParams, SamplingParams

        engine = LlamaEngine()
        if self.model is None:
            raise RuntimeError("skipped: no model to generate with (see 'starter model')")
        engine.load(self.model.path, LoadParams(max_context=1024))
        self.engine = engine
        pieces: list[str] = []
        result = engine.stream_chat(
            [{"role": "system", "content": "You are a helpful assistant."},
             {"role": "user", "content": "What is the capital of France?"}],
            SamplingParams(temperature=0, max_tokens=24),
            cancel=threading.Event(),
            on_text=pieces.append,
        )
        # Properties that hold on every CPU; the words themselves do not (a 135M model's
        # greedy reply changes with the processor's floating-point path).
        if result.error:
            raise RuntimeError(result.error)
        if result.finish_reason not in ("stop", "length") or result.completion_tokens < 1:
            raise RuntimeError(
                f"no reply ({result.finish_reason}, {result.completion_tokens} tokens)")
        if "".join(pieces) != result.text or not result.text.strip():
            raise RuntimeError("the streamed text differs from the reply")
        return f"{result.completion_tokens} tokens, {result.tokens_per_s or 0:.0f} tok/s"

    def fingerprint(self) -> str:
        # Whether the model computes what it should: the mean log-likelihood of a fixed
        # text against the value recorded for this file (slmdesk/engine/fingerprint.py).
        from slmdesk.catalog.curated import reference_for_file
        from slmdesk.engine.fingerprint import DEFAULT_TOLERANCE, FingerprintCheck

        if self.engine is None:
            raise RuntimeError("skipped: no loaded model (see 'generation')")
        gguf = self.engine.gguf
        entry = reference_for_file(gguf.size_bytes, gguf.architecture)
        result = FingerprintCheck(
            measured=self.engine.fingerprint(),
            expected=entry.fingerprint_logprob if entry else None,
            tolerance=(entry.fingerprint_tolerance if entry else None) or DEFAULT_TOLERANCE,
        )
        if not result.ok:
            raise RuntimeError(result.describe())
        return result.describe() + (f" [{entry.name}]" if entry else "")

    def classification(self) -> str:
        from slmdesk.classify import Classifier, ClassifierSpec, Label

        if self.engine is None:
            raise RuntimeError("skipped: no loaded model (see 'generation')")
        spec = ClassifierSpec(labels=(Label("positive"), Label("negative")), calibration="none")
        pred = Classifier(self.engine, spec).classify("I love it")
        if pred.error:
            raise RuntimeError(pred.error)
        total = sum(pred.probs.values())
        if pred.label not in spec.label_names or abs(total - 1.0) > 1e-3:
            raise RuntimeError(f"unexpected prediction {pred.label!r} {pred.probs!r}")
        return f"{pred.label} ({pred.confidence:.2f})"


def run_self_test() -> int:
    with tempfile.TemporaryDirectory(prefix="slmdesk-selftest-") as home:
        os.environ["SLMDESK_HOME"] = home
        self_test = _SelfTest(home)
        self_test.run()

    print(f"slmdesk {__version__} self-test")
    for name, ok, detail in self_test.results:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    failed = [c for c in self_test.results if not c[1]]
    print("self-test passed" if not failed else f"self-test FAILED ({len(failed)} checks)")
    return 1 if failed else 0
