"""The real window, offscreen: GUI stalls while replies stream, decode and prefill speed through
the engine thread against llama.cpp's own llama-bench, and switching models against a bare load.

Everything here drives the same objects a person does: the composer and send button path
(``send_requested``), the model picker's ``activated`` signal, and the engine thread that
streams into the chat view. Rounds alternate between slmdesk and its baseline.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import median, percentile, ratio_of_medians
from slmdesk.ui.engine_thread import ChatJob

DECODE_PROMPT = ("Write a long Markdown guide to baking bread, with headings, lists, a table "
                 "and a code block.")
# About 500 tokens of plain prose for the prefill round (llama-bench's pp512 baseline).
PREFILL_TEXT = ("Summarise the following notes in one sentence. " + (
    "The harbour town keeps its old market on the hill, where farmers sell bread, cheese, "
    "apples and wool every Saturday morning while fishermen mend nets by the water. ") * 14)


def _probe(app: Any, until: Callable[[], bool], interval_ms: int = 5,
           timeout_s: float = 600) -> list[float]:
    """Lateness (ms) of a repeating 5 ms timer while ``until()`` is false."""
    from PySide6.QtCore import QTimer

    late: list[float] = []
    expected = [time.perf_counter() + interval_ms / 1000]

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - expected[0]) * 1000))
        expected[0] = now + interval_ms / 1000

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    deadline = time.perf_counter() + timeout_s
    while not until():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not finish in time")
        app.processEvents()
        time.sleep(0.0005)
    timer.stop()
    return late


def per_round(ours: list[float], theirs: list[float]) -> list[float]:
    """Each round's ratio, for the report beside the ratio of medians."""
    return [round(a / b, 3) for a, b in zip(ours, theirs, strict=True)]


def p99(values: list[float]) -> float:
    return percentile(values, 99) if len(values) >= 100 else max(values)


class WindowSession:
    """slmdesk's MainWindow in a temporary SLMDESK_HOME with the starter model loaded."""

    def __init__(self, threads: int) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        self._tmp = tempfile.TemporaryDirectory(prefix="slmdesk-bench-")
        self.home = self._tmp.name
        os.environ["SLMDESK_HOME"] = self.home
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication([])
        from slmdesk.app import build_window
        from slmdesk.settings import load_settings, save_settings
        from slmdesk.startup import open_core

        core0 = open_core(self.home)
        s = load_settings(core0.db)
        s.n_threads = threads  # pinned: llama-bench and bare loads get the same count
        save_settings(core0.db, s)
        core0.db.close()
        self.core, self.engine, self.win = build_window(self.home)
        self.results: list[Any] = []
        self.last_chat: ChatJob | None = None  # the window's last reply request

        def submitted(job: Any) -> None:
            # Every reply the window starts, as the engine finishes it.
            if isinstance(job, ChatJob):
                self.last_chat = job
                job.finished.connect(self.results.append)

        self.engine.job_submitted.connect(submitted)
        self.win.show()
        self.wait_loaded()

    def wait_loaded(self, timeout_s: float = 120) -> float:
        """Process events until the window has a loaded model; return the seconds waited."""
        started = time.perf_counter()
        deadline = started + timeout_s
        while self.win.loaded is None:
            if time.perf_counter() > deadline:
                raise TimeoutError("the model did not load")
            self.app.processEvents()
            time.sleep(0.0005)
        return time.perf_counter() - started

    def idle(self, seconds: float = 2.0) -> list[float]:
        end = time.perf_counter() + seconds
        return _probe(self.app, lambda: time.perf_counter() > end)

    def send(self, text: str, max_tokens: int, temperature: float = 0.8,
             seed: int = 11) -> tuple[Any, list[float]]:
        """Send ``text`` in a new chat; return the engine's GenerationResult and the stalls."""
        win = self.win
        win.chat.new_chat()
        win.chat_page.settings_panel.max_tokens.setValue(max_tokens)
        win.chat_page.settings_panel.temperature.setValue(temperature)
        win.chat_page.settings_panel.seed.setValue(seed)
        win.chat_page.settings_panel.flush()
        win.chat_page.composer.setPlainText(text)
        before = len(self.results)
        win.chat.send_requested()
        stalls = _probe(self.app, lambda: win.chat.gen_job is None)
        self.settle()
        if len(self.results) == before:
            raise RuntimeError("the reply finished without a result (see the window's error)")
        return self.results[-1], stalls

    def settle(self, seconds: float = 0.2) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.001)

    def close(self) -> None:
        self.win.close()
        self.engine.shutdown()
        self.settle(0.1)
        self.core.db.close()
        self._tmp.cleanup()


def stream_rounds(session: WindowSession, model: Path, threads: int, rounds: int,
                  tokens: int, log: Callable[[str], None]) -> dict[str, Any]:
    """decode_ratio, prefill_ratio (against llama-bench) and the ui_stall figures.

    Each round runs llama-bench (pp512 and tg<tokens>, one repetition) and then, in the
    window, one ~500-token prompt and one ``tokens``-token streamed reply.
    """
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams

    # The same engine alone, no window, on this thread: what the window's streaming costs.
    alone = LlamaEngine()
    alone.load(str(model), LoadParams(n_threads=threads))
    try:
        return _stream_rounds(session, alone, model, threads, rounds, tokens, log)
    finally:
        alone.unload()


def _stream_rounds(session: WindowSession, alone: Any, model: Path, threads: int, rounds: int,
                   tokens: int, log: Callable[[str], None]) -> dict[str, Any]:
    from bench import llama_bench

    idle = session.idle()
    ours_tg, ours_pp, theirs_tg, theirs_pp, alone_tg = [], [], [], [], []
    fa_off_tg, fa_off_pp = [], []
    stalls: list[float] = []
    reply_tokens: list[int] = []
    pp_tokens: list[int] = []
    for i in range(rounds):
        bench = llama_bench.run(model, threads, n_prompt=512, n_gen=tokens)
        theirs_pp.append(bench["pp"])
        theirs_tg.append(bench["tg"])
        # The same with flash attention off, as llama-cpp-python (and so the engine) runs.
        same = llama_bench.run(model, threads, n_prompt=512, n_gen=tokens, flash_attn=0)
        fa_off_pp.append(same["pp"])
        fa_off_tg.append(same["tg"])
        pre, _ = session.send(PREFILL_TEXT, max_tokens=1, temperature=0.0)
        ours_pp.append(float(pre.prompt_tokens_per_s))
        pp_tokens.append(int(pre.prompt_tokens_evaluated))
        reply, streaming = session.send(DECODE_PROMPT, max_tokens=tokens)
        ours_tg.append(float(reply.tokens_per_s))
        reply_tokens.append(int(reply.completion_tokens))
        stalls += streaming
        # The window's own request (system prompt and sampling included), on the engine alone.
        job = session.last_chat
        assert job is not None
        alone.clear_cache()
        by_itself = alone.stream_chat(job.messages, job.sampling, on_text=lambda _text: None)
        alone_tg.append(by_itself.tokens_per_s or 0.0)
        log(f"  round {i + 1}: decode {ours_tg[-1]:.1f} vs llama-bench tg{tokens} "
            f"{theirs_tg[-1]:.1f} t/s ({fa_off_tg[-1]:.1f} with flash attention off) and "
            f"the engine alone {alone_tg[-1]:.1f} t/s ({reply_tokens[-1]} and "
            f"{by_itself.completion_tokens} tokens); prefill {ours_pp[-1]:.1f} "
            f"({pp_tokens[-1]} tokens) vs pp512 {theirs_pp[-1]:.1f} t/s "
            f"({fa_off_pp[-1]:.1f} with flash attention off, as the engine); "
            f"stall max {max(streaming):.1f} ms")
    return {
        "decode_ratio": ratio_of_medians(ours_tg, theirs_tg),
        "decode_ratio_rounds": per_round(ours_tg, theirs_tg),
        "decode_ratio_fa_off_rounds": per_round(ours_tg, fa_off_tg),
        "decode_window_vs_engine_ratio": ratio_of_medians(ours_tg, alone_tg),
        "decode_window_vs_engine_rounds": per_round(ours_tg, alone_tg),
        "engine_decode_tokens_per_s": median(alone_tg),
        "prefill_ratio": ratio_of_medians(ours_pp, theirs_pp),
        "decode_ratio_fa_off": ratio_of_medians(ours_tg, fa_off_tg),
        "prefill_ratio_fa_off": ratio_of_medians(ours_pp, fa_off_pp),
        "decode_tokens_per_s": median(ours_tg),
        "llama_bench_tg_tokens_per_s": median(theirs_tg),
        "prefill_tokens_per_s": median(ours_pp),
        "llama_bench_pp512_tokens_per_s": median(theirs_pp),
        "llama_bench_fa_off_tg_tokens_per_s": median(fa_off_tg),
        "llama_bench_fa_off_pp512_tokens_per_s": median(fa_off_pp),
        "decode_reply_tokens": reply_tokens,
        "prefill_prompt_tokens": pp_tokens,
        "ui_stall_max_ms": max(stalls),
        "ui_stall_p99_ms": p99(stalls),
        "ui_stall_idle_p99_ms": p99(idle),
        "ui_stall_idle_max_ms": max(idle),
        "ui_stall_samples": len(stalls),
    }


def switch_rounds(session: WindowSession, target: Path, threads: int, rounds: int,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """switch_ratio: the chat's model from the starter model to ``target`` through the model
    picker (what a click does), until ``loaded``; against a bare ``Llama(...)`` load of
    ``target`` with the same context, batch and threads, in this same process."""
    import llama_cpp

    from slmdesk.catalog.registry import import_model

    win = session.win
    start_model = win.model
    assert start_model is not None
    record = import_model(session.core.db, target)
    win.refresh_models()
    ours, bare = [], []
    n_ctx = 0
    for i in range(rounds):
        index = win.model_picker.findData(record.id)
        win.model_picker.setCurrentIndex(index)
        started = time.perf_counter()
        win.model_picker.activated.emit(index)
        session.wait_loaded()
        ours.append(time.perf_counter() - started)
        assert win.loaded is not None and win.loaded.path == str(record.path)
        n_ctx, n_batch = win.loaded.n_ctx, min(512, win.loaded.n_ctx)
        # Back to the starter model (not timed), then the bare load with the engine idle.
        back = win.model_picker.findData(start_model.id)
        win.model_picker.setCurrentIndex(back)
        win.model_picker.activated.emit(back)
        session.wait_loaded()
        started = time.perf_counter()
        llm = llama_cpp.Llama(model_path=str(target), n_ctx=n_ctx, n_batch=n_batch,
                              n_threads=threads, n_threads_batch=threads, verbose=False)
        bare.append(time.perf_counter() - started)
        llm.close()
        log(f"  round {i + 1}: switch {ours[-1]:.2f} s, bare Llama load {bare[-1]:.2f} s")
    return {
        "switch_ratio": ratio_of_medians(ours, bare),
        "switch_s": median(ours),
        "bare_load_s": median(bare),
        "switch_n_ctx": n_ctx,
        "switch_target": target.name,
    }


def measure(threads: int = 1, tokens: int = 256) -> dict[str, float]:
    """GUI stalls alone (one reply), kept for callers of the older single-round figure."""
    session = WindowSession(threads)
    try:
        idle = session.idle()
        reply, streaming = session.send(DECODE_PROMPT, max_tokens=tokens)
    finally:
        session.close()
    return {
        "ui_stall_max_ms": max(streaming),
        "ui_stall_p99_ms": p99(streaming),
        "ui_stall_idle_p99_ms": p99(idle),
        "ui_stall_idle_max_ms": max(idle),
        "ui_stall_reply_tokens": float(reply.completion_tokens),
        "ui_stall_mean_ms": statistics.mean(streaming),
    }
