"""llama.cpp's own llama-server as the benchmark's reference server: start, wait, stop.

The binary is the one bench/llama_bench.py builds from the installed llama-cpp-python's
vendored llama.cpp, run with the wheel's libraries first (``tool_environment``), so it
executes the engine's exact ggml/llama code.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import llama_bench


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(binary: Path, model: Path, port: int, *, threads: int, parallel: int,
                   ctx_per_slot: int, flash_attn: str = "off") -> list[str]:
    """The llama-server command line: ``parallel`` slots of ``ctx_per_slot`` tokens each.

    Flash attention is off by default because llama-cpp-python's ``Llama`` (the engine)
    leaves it off; llama.cpp's own default is "auto" (on for the CPU backend).
    """
    if parallel < 1 or threads < 1 or ctx_per_slot < 1:
        raise ValueError("parallel, threads and ctx_per_slot must be at least 1")
    return [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-c", str(ctx_per_slot * parallel), "-np", str(parallel),
            "-t", str(threads), "-tb", str(threads), "-fa", flash_attn, "-ngl", "0",
            "--no-webui"]


class LlamaServer:
    """One llama-server process on a free port; use as a context manager."""

    def __init__(self, model: Path, *, threads: int, parallel: int, ctx_per_slot: int = 2048,
                 flash_attn: str = "off", ready_timeout_s: float = 180.0) -> None:
        self.binary = llama_bench.ensure_built(tool=llama_bench.SERVER_TOOL)
        self.port = free_port()
        self.command = server_command(self.binary, model, self.port, threads=threads,
                                      parallel=parallel, ctx_per_slot=ctx_per_slot,
                                      flash_attn=flash_attn)
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        # Its log goes to a file: a pipe nobody reads would fill and block the server.
        self.process = subprocess.Popen(
            self.command, env=llama_bench.tool_environment(), stdout=subprocess.DEVNULL,
            stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._healthy():
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")
                raise RuntimeError(f"llama-server exited {self.process.returncode}: {err[-1500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("llama-server did not become ready")
            time.sleep(0.2)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("status") == "ok")
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.log.close()
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
