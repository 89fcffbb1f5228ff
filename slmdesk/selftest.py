"""`slmdesk --self-test`: imports, backend, code highlighting, database, a short real
generation, the model's numeric fingerprint and a classification."""

from __future__ import annotations

import os
import tempfile
import threading
import time

from slmdesk import __version__


def run_self_test() -> int:
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, fn):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            detail = fn()
            checks.append((name, True, f"{detail} ({time.perf_counter() - started:.2f} s)"))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none escapes
            checks.append((name, False, f"{type(exc).__name__}: {exc}"))

    with tempfile.TemporaryDirectory(prefix="slmdesk-selftest-") as home:
        os.environ["SLMDESK_HOME"] = home
        from slmdesk.engine.backend import backend_info

        def _backend() -> str:
            b = backend_info()
            if not b.available:
                raise RuntimeError(b.error)
            return f"{b.label}, llama-cpp-python {b.llama_cpp_python_version}"

        check("backend", _backend)

        def _highlighting() -> str:
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

        check("code highlighting", _highlighting)

        from slmdesk.startup import open_core

        state: dict[str, object] = {}

        def _database() -> str:
            core = open_core(home)
            state["core"] = core
            from slmdesk.store.db import integrity_check

            return f"integrity {integrity_check(core.db)}"

        check("database", _database)

        def _starter() -> str:
            from slmdesk.catalog.registry import resolve_model

            core = state["core"]
            model = resolve_model(core.db)  # type: ignore[attr-defined]
            state["model"] = model
            return f"{model.name}"

        check("starter model", _starter)

        def _generate() -> str:
            from slmdesk.engine.llama_engine import LlamaEngine
            from slmdesk.engine.params import LoadParams, SamplingParams

            engine = LlamaEngine()
            if "model" not in state:
                raise RuntimeError("skipped: no model to generate with (see 'starter model')")
            engine.load(state["model"].path, LoadParams(max_context=1024))  # type: ignore[attr-defined]
            state["engine"] = engine
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

        check("generation", _generate)

        def _fingerprint() -> str:
            # Whether the model computes what it should: the mean log-likelihood of a fixed
            # text against the value recorded for this file (slmdesk/engine/fingerprint.py).
            from slmdesk.catalog.curated import reference_for_file
            from slmdesk.engine.fingerprint import DEFAULT_TOLERANCE, FingerprintCheck

            if "engine" not in state:
                raise RuntimeError("skipped: no loaded model (see 'generation')")
            engine = state["engine"]
            gguf = engine.gguf  # type: ignore[attr-defined]
            entry = reference_for_file(gguf.size_bytes, gguf.architecture)
            result = FingerprintCheck(
                measured=engine.fingerprint(),  # type: ignore[attr-defined]
                expected=entry.fingerprint_logprob if entry else None,
                tolerance=(entry.fingerprint_tolerance if entry else None) or DEFAULT_TOLERANCE,
            )
            if not result.ok:
                raise RuntimeError(result.describe())
            return result.describe() + (f" [{entry.name}]" if entry else "")

        check("fingerprint", _fingerprint)

        def _classify() -> str:
            from slmdesk.classify import Classifier, ClassifierSpec, Label

            if "engine" not in state:
                raise RuntimeError("skipped: no loaded model (see 'generation')")
            engine = state["engine"]
            spec = ClassifierSpec(
                labels=(Label("positive"), Label("negative")), calibration="none"
            )
            pred = Classifier(engine, spec).classify("I love it")  # type: ignore[arg-type]
            if pred.error:
                raise RuntimeError(pred.error)
            total = sum(pred.probs.values())
            if pred.label not in spec.label_names or abs(total - 1.0) > 1e-3:
                raise RuntimeError(f"unexpected prediction {pred.label!r} {pred.probs!r}")
            return f"{pred.label} ({pred.confidence:.2f})"

        check("classification", _classify)
        engine = state.get("engine")
        if engine is not None:
            engine.unload()  # type: ignore[attr-defined]
        core = state.get("core")
        if core is not None:
            core.db.close()  # type: ignore[attr-defined]

    print(f"slmdesk {__version__} self-test")
    for name, ok, detail in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    failed = [c for c in checks if not c[1]]
    print("self-test passed" if not failed else f"self-test FAILED ({len(failed)} checks)")
    return 1 if failed else 0
