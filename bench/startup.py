"""Start-up and memory figures measured in fresh processes: cold start, 10k-chat start, the
packaged app's start, and resident memory against bare llama-cpp-python plus bare Qt.

Start-up is timed from just before the process is started to the CLOCK_MONOTONIC stamp the
window prints after its first paint pass (slmdesk's SLMDESK_BENCH_FIRST_PAINT hook; the bare
window script does the same). CLOCK_MONOTONIC is one clock for every process on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.stats import median, ratio_of_medians

ROOT = Path(__file__).resolve().parent.parent
BARE_WINDOW = Path(__file__).resolve().parent / "bare_window.py"
BUNDLE_DIR = ROOT / "dist" / "slmdesk"
FIRST_PAINT_ENV = "SLMDESK_BENCH_FIRST_PAINT"  # slmdesk.app reads it; not imported (no Qt here)
# The main window's own first paint (after the start-up shell's): slmdesk.app.WINDOW_PAINT_ENV.
WINDOW_PAINT_ENV = "SLMDESK_BENCH_WINDOW_PAINT"


class StartupFailed(RuntimeError):
    """A measured process did not report its first paint."""


def gui_env(home: str | Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a measured GUI process: offscreen, in ``home``."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    # An installed app has its bytecode cached (pip compiles it; a dev checkout writes
    # __pycache__ on the first run). Some shells here set this variable, which would make
    # every measured start recompile all of slmdesk and time the compiler, not the app.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if home is not None:
        env["SLMDESK_HOME"] = str(home)
    env.update(extra)
    return env


def first_paint_s(cmd: Sequence[str], env: dict[str, str], timeout: float = 120,
                  stamp_env: str = FIRST_PAINT_ENV) -> float:
    """Seconds from starting ``cmd`` to the first-paint stamp it writes.

    The stamp goes to a file, not stdout: llama-cpp-python points fds 1 and 2 at /dev/null
    while the app's engine thread loads the model, which is when the window first paints.
    """
    with tempfile.TemporaryDirectory(prefix="slmdesk-paint-") as tmp:
        stamp_file = Path(tmp) / "first-paint"
        env = {**env, stamp_env: str(stamp_file)}
        started = time.monotonic()
        try:
            proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True,
                                  timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            raise StartupFailed(f"{cmd[0]}: no first paint within {timeout:.0f} s") from exc
        text = stamp_file.read_text(encoding="utf-8") if stamp_file.is_file() else ""
    stamp = parse_first_paint(text)
    if stamp is None:
        raise StartupFailed(f"{' '.join(cmd)} wrote no first-paint stamp (exit "
                            f"{proc.returncode}): {proc.stderr[-600:]}")
    return stamp - started


def parse_first_paint(stdout: str) -> float | None:
    """The monotonic time in a ``first-paint <t>`` line, or None."""
    for line in stdout.splitlines():
        if line.startswith("first-paint "):
            return float(line.split()[1])
    return None


def app_cmd() -> list[str]:
    """The development run: the same entry point as `slmdesk` / `./dev run`."""
    return [sys.executable, "-m", "slmdesk"]


def bare_cmd() -> list[str]:
    return [sys.executable, str(BARE_WINDOW)]


def bundle_cmd(bundle: Path = BUNDLE_DIR) -> list[str]:
    return [str(bundle / "slmdesk")]


def prepare_home(home: Path, threads: int) -> None:
    """Open the store once (migrations, starter model) and pin the thread count, so a
    measured start is a normal start, not the very first one."""
    from slmdesk.settings import load_settings, save_settings
    from slmdesk.startup import open_core

    core = open_core(str(home))
    try:
        s = load_settings(core.db)
        s.n_threads = threads
        save_settings(core.db, s)
    finally:
        core.db.close()


def interleaved(commands: dict[str, tuple[list[str], dict[str, str]]], rounds: int,
                log: Callable[[str], None]) -> dict[str, list[float]]:
    """First-paint seconds of each command, one warm-up run each (discarded: it warms the
    file cache) and then ``rounds`` rounds in turn, so all of them see the same load. A
    command named ``*_window`` is timed to the main window's paint, not the shell's."""
    def run(name: str, cmd: list[str], env: dict[str, str]) -> float:
        stamp = WINDOW_PAINT_ENV if name.endswith("_window") else FIRST_PAINT_ENV
        return first_paint_s(cmd, env, stamp_env=stamp)

    for name, (cmd, env) in commands.items():
        run(name, cmd, env)
        log(f"  start-up: warmed {name}")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (cmd, env) in commands.items():
            times[name].append(run(name, cmd, env))
    return times


def startup_ratios(empty_home: Path, big_home: Path | None, rounds: int,
                   bundle: Path | None, log: Callable[[str], None],
                   bundle_home: Path | None = None) -> dict[str, object]:
    """cold_start_ratio, start_ratio_10k_chats and (with a bundle) bundle_start_ratio.

    The bundle gets its own home (``bundle_home``, a fresh folder by default): a bundle
    built from older code may refuse a store that newer code migrated.
    """
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "bare": (bare_cmd(), gui_env()),
        "app": (app_cmd(), gui_env(empty_home)),
        "app_window": (app_cmd(), gui_env(empty_home)),
    }
    if big_home is not None:
        commands["app_10k"] = (app_cmd(), gui_env(big_home))
    out: dict[str, object] = {}
    if bundle is not None:
        if bundle_home is None:
            bundle_home = Path(tempfile.mkdtemp(prefix="slmdesk-bundle-home-"))
        try:
            # A bundle built before the first-paint hook existed never reports: say so.
            first_paint_s(bundle_cmd(bundle), gui_env(bundle_home), timeout=60)
            commands["bundle"] = (bundle_cmd(bundle), gui_env(bundle_home))
        except (StartupFailed, OSError) as exc:
            out["bundle_start_error"] = (f"{exc} (rebuild it with `./dev bench --package`, "
                                         "or `./dev package`)")
    times = interleaved(commands, rounds, log)
    out["cold_start_ratio"] = ratio_of_medians(times["app"], times["bare"])
    out["cold_start_app_s"] = median(times["app"])
    out["cold_start_bare_s"] = median(times["bare"])
    # The shell paints first; the full main window (store open, tabs built) after it.
    out["window_paint_ratio"] = ratio_of_medians(times["app_window"], times["bare"])
    out["window_paint_s"] = median(times["app_window"])
    if "app_10k" in times:
        out["start_ratio_10k_chats"] = ratio_of_medians(times["app_10k"], times["app"])
        out["start_10k_chats_s"] = median(times["app_10k"])
    if "bundle" in times:
        out["bundle_start_ratio"] = ratio_of_medians(times["bundle"], times["app"])
        out["bundle_start_s"] = median(times["bundle"])
    out["startup_rounds_s"] = {k: [round(v, 3) for v in vs] for k, vs in times.items()}
    return out


def bundle_sizes(dist: Path = BUNDLE_DIR.parent) -> dict[str, float] | None:
    """MB of the dist/slmdesk folder and of each archive beside it; None without a bundle."""
    folder = dist / "slmdesk"
    if not folder.is_dir():
        return None
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    out = {"folder": round(total / 1e6, 1)}
    for archive in sorted(dist.glob("slmdesk-*.tar.xz")):
        out[archive.name] = round(archive.stat().st_size / 1e6, 1)
    return out


# --- resident memory -------------------------------------------------------------------------

def _rss_app(home: str) -> None:
    """Child process: the app's window with its model loaded (the real start-up path)."""
    import psutil
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from slmdesk.app import build_window

    core, engine, window = build_window(home)
    window.show()
    deadline = time.monotonic() + 120
    while window.loaded is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    if window.loaded is None:
        raise SystemExit("the model did not load")
    settle = time.monotonic() + 0.5
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.005)
    print(json.dumps({"rss": psutil.Process().memory_info().rss, "n_ctx": window.loaded.n_ctx,
                      "model": window.loaded.path}), flush=True)
    window.close()
    engine.shutdown()
    core.db.close()


def _rss_llama(model: str, n_ctx: int, threads: int) -> None:
    """Child process: a bare llama-cpp-python Llama with the same model and context."""
    import llama_cpp
    import psutil

    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    print(json.dumps({"rss": psutil.Process().memory_info().rss}), flush=True)
    llm.close()


def _child_json(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-600:]}")


def rss_overhead(home: Path, threads: int, rounds: int,
                 log: Callable[[str], None]) -> dict[str, object]:
    """rss_overhead_ratio: the app with its model loaded ÷ (bare Llama + bare Qt window)."""
    env = gui_env(home)
    app_rss, llama_rss, qt_rss = [], [], []
    for _ in range(rounds):
        app = _child_json([sys.executable, "-m", "bench.startup", "rss-app", str(home)], env)
        app_rss.append(float(app["rss"]))  # type: ignore[arg-type]
        llama = _child_json([sys.executable, "-m", "bench.startup", "rss-llama",
                             str(app["model"]), str(app["n_ctx"]), str(threads)], env)
        llama_rss.append(float(llama["rss"]))  # type: ignore[arg-type]
        qt = _child_json([sys.executable, str(BARE_WINDOW), "--rss"], env)
        qt_rss.append(float(qt["rss"]))  # type: ignore[arg-type]
    log(f"  memory: app {median(app_rss) / 1e6:.0f} MB, Llama {median(llama_rss) / 1e6:.0f} MB,"
        f" Qt window {median(qt_rss) / 1e6:.0f} MB")
    bare = [a + b for a, b in zip(llama_rss, qt_rss, strict=True)]
    return {
        "rss_overhead_ratio": ratio_of_medians(app_rss, bare),
        "rss_app_mb": round(median(app_rss) / 1e6, 1),
        "rss_bare_llama_mb": round(median(llama_rss) / 1e6, 1),
        "rss_bare_qt_mb": round(median(qt_rss) / 1e6, 1),
    }


if __name__ == "__main__":
    # Child-process entry points for rss_overhead().
    if sys.argv[1] == "rss-app":
        _rss_app(sys.argv[2])
    elif sys.argv[1] == "rss-llama":
        _rss_llama(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown: {sys.argv[1]}")
