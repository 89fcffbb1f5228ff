"""Search the Hugging Face Hub for GGUF models, list a repo's files, and fetch file bytes.

Search and metadata go through ``huggingface_hub.HfApi``; file bytes go through a small
``http.client`` layer (``open_hub_file``) so that the download manager owns the socket:
Range/If-Range, a read timeout that acts as a stall watchdog, and an abort from another
thread. Every network failure leaves this module as ``NetworkError`` (or ``NotFoundError``)
with text a person can act on.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from slmdesk import __version__
from slmdesk.catalog.chunks import chunks_up_to
from slmdesk.engine.gguf import read_gguf_prefix, supported_architectures
from slmdesk.errors import InvalidInputError, ModelFileError, NetworkError, NotFoundError
from slmdesk.json_data import JsonFields

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
METADATA_TIMEOUT_S: Final = 20.0
# How long the reachability check before a search or a file listing waits for a TCP
# connection. huggingface_hub retries a failed connection five times with back-off (about
# 24 s in all), so slmdesk checks first and answers at once when there is no network.
PROBE_TIMEOUT_S: Final = 1.5
# The GGUF metadata (tokenizer arrays above all) can run to several MiB; start small and
# grow, never past this.
PREFIX_FIRST_BYTES: Final = 2 * 1024 * 1024
PREFIX_MAX_BYTES: Final = 16 * 1024 * 1024
MAX_REDIRECTS: Final = 5

SortOrder = Literal["downloads", "likes", "recent"]
_SORT_KEYS: Final[Mapping[str, str]] = {
    "downloads": "downloads",
    "likes": "likes",
    "recent": "last_modified",
}

_REPO_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_COMMIT: Final = re.compile(r"^[0-9a-f]{40}$")
_SPLIT: Final = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

# Quantization names seen in GGUF file names: llama.cpp's file types, the per-tensor
# names, the removed ARM repacks (still on the hub) and common "XL" variants. Longest
# first, so the alternation prefers Q4_0_4_4 over Q4_0 and Q4_K_M over Q4_K.
_QUANT_NAMES: Final = sorted(
    {
        "F32", "F16", "BF16",
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q2_K_S", "Q2_K_L",
        "Q3_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q3_K_XL",
        "Q4_K", "Q4_K_S", "Q4_K_M", "Q4_K_L", "Q4_K_XL",
        "Q5_K", "Q5_K_S", "Q5_K_M", "Q5_K_L", "Q5_K_XL",
        "Q6_K", "Q6_K_L", "Q6_K_XL", "Q8_K", "Q8_K_XL",
        "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
        "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL", "IQ4_XS",
        "TQ1_0", "TQ2_0", "MXFP4", "MXFP4_MOE",
        "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8",
    },
    key=len,
    reverse=True,
)
_QUANT_IN_NAME: Final = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, _QUANT_NAMES)) + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HubRepo(JsonFields):
    """One search hit: a model repository with GGUF files."""

    repo_id: str
    downloads: int
    likes: int
    last_modified: str | None
    gated: bool
    tags: tuple[str, ...]


@dataclass(frozen=True)
class HubFile(JsonFields):
    """One GGUF file of a repository at a resolved commit."""

    repo_id: str
    filename: str
    revision: str
    size_bytes: int | None
    sha256: str | None
    quantization: str | None
    architecture: str | None
    licence: str | None = None  # from the repo's "license:..." tag

    @property
    def split(self) -> tuple[int, int] | None:
        """(part, parts) for a split model file ``...-00001-of-00003.gguf``."""
        return split_part(self.filename)


# -- settings read at call time ----------------------------------------------------------


def hub_endpoint() -> str:
    """The hub's base URL: ``HF_ENDPOINT`` when set (read now, not at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def check_online() -> None:
    """Raise ``NetworkError`` in offline mode, before anything touches the network."""
    if is_offline():
        raise NetworkError(
            "Offline mode is on (HF_HUB_OFFLINE is set), so slmdesk does not contact the "
            "Hugging Face Hub. Unset HF_HUB_OFFLINE to search or download models."
        )


def _sync_library_settings() -> None:
    # huggingface_hub reads HF_HUB_OFFLINE and the telemetry switch once, at import;
    # slmdesk reads them per call so a changed setting applies without a restart. With
    # telemetry on, the library also fetches an "agent harnesses" list from the default
    # endpoint while building headers, which slmdesk never wants.
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = is_offline()
    constants.HF_HUB_DISABLE_TELEMETRY = True


def hub_token(token: str | None = None) -> str | None:
    """The token to send: the one given, else the person's saved one (HF_TOKEN, hf login)."""
    if token:
        return token
    from huggingface_hub import get_token

    found: str | None = get_token()
    return found


def _api(token: str | None) -> HfApi:
    _sync_library_settings()
    from huggingface_hub import HfApi

    return HfApi(
        endpoint=hub_endpoint(),
        token=hub_token(token) or False,
        library_name="slmdesk",
        library_version=__version__,
    )


def _is_transport_error(exc: BaseException) -> bool:
    # The HTTP library under huggingface_hub changed between versions (requests, httpx,
    # httpx2); match on the package rather than importing one of them.
    root = type(exc).__module__.split(".")[0]
    return isinstance(exc, OSError) or root in {
        "httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3", "h11",
    }


@contextmanager
def _hub_errors(what: str, repo_id: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub and transport errors into errors a person can act on."""
    from huggingface_hub import errors as hf_errors

    try:
        yield
    except hf_errors.OfflineModeIsEnabled as exc:
        raise NetworkError(
            "Offline mode is on (HF_HUB_OFFLINE is set); unset it to reach the hub."
        ) from exc
    except hf_errors.GatedRepoError as exc:
        raise NetworkError(gated_message(repo_id or "this repository")) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise NotFoundError(
            f"{repo_id}: that revision (branch, tag or commit) does not exist."
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise NotFoundError(
            f"No model repository {repo_id} on the hub (or it is private and your token "
            "cannot see it)."
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        error = HubUnreachableError if status is None or status >= 500 else NetworkError
        raise error(
            f"The hub could not {what} (HTTP {status}). Try again later."
        ) from exc
    except Exception as exc:
        if _is_transport_error(exc):
            raise _cannot_reach(exc, f"the Hugging Face Hub at {hub_endpoint()} to {what}",
                                " Check your connection and try again.") from exc
        raise


_NO_ROUTE_ERRNOS: Final = frozenset(
    code for code in (
        getattr(errno, "ENETUNREACH", None), getattr(errno, "EHOSTUNREACH", None),
        getattr(errno, "ENETDOWN", None), getattr(errno, "EHOSTDOWN", None),
    ) if code is not None
)


def offline_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means "no network to the hub" (a name that does not resolve, a refused
    connection, no route), or None for failures worth retrying (drops, timeouts, 5xx).

    Looks through the exception's causes: the HTTP libraries wrap the socket's error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "the host name could not be resolved (no network, or no DNS)"
        if isinstance(current, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(current, OSError) and current.errno in _NO_ROUTE_ERRNOS:
            return "there is no route to it (no network)"
        current = current.__cause__ or current.__context__
    return None


def _cannot_reach(exc: BaseException, what: str, advice: str = "") -> HubUnreachableError:
    """"Cannot reach <what>: <why>." as ``HubOfflineError`` when there is no network
    (not worth retrying), else as ``HubUnreachableError``."""
    reason = offline_reason(exc)
    error = HubUnreachableError if reason is None else HubOfflineError
    return error(f"Cannot reach {what}: {reason or _describe(exc)}.{advice}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def gated_message(repo_id: str) -> str:
    return (
        f"{repo_id} is a gated repository: accept its terms on "
        f"{DEFAULT_ENDPOINT}/{repo_id} with your account, then log in with `hf auth login` "
        "(or set HF_TOKEN) so slmdesk can send your token."
    )


# -- names -------------------------------------------------------------------------------


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is an ``owner/name`` the hub could have; else raise."""
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise InvalidInputError(
            f"{repo_id!r} is not a hub repository id; it looks like owner/name, "
            "for example HuggingFaceTB/SmolLM2-135M-Instruct-GGUF."
        )
    return repo_id


def is_commit(revision: str | None) -> bool:
    return revision is not None and _COMMIT.fullmatch(revision) is not None


def safe_filename(filename: str) -> str:
    """Return ``filename`` if it is a safe relative path to a ``.gguf`` file; else raise.

    A hub file name ends up as a path under the models directory, so anything that could
    leave it (``..``, absolute paths, drive letters, backslashes, NUL, control
    characters) is refused.
    """

    def refuse(why: str) -> InvalidInputError:
        return InvalidInputError(f"Refusing the file name {filename[:120]!r}: {why}.")

    if not filename or len(filename) > 512:
        raise refuse("it is empty or too long")
    if "\0" in filename or any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise refuse("it contains control characters")
    if "\\" in filename:
        raise refuse("it contains a backslash")
    if filename.startswith("/") or re.match(r"^[A-Za-z]:", filename):
        raise refuse("it is an absolute path")
    parts = filename.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise refuse("it contains an empty, '.' or '..' path part")
    if any(part.startswith(".") for part in parts):
        raise refuse("it contains a hidden path part")
    if not filename.lower().endswith(".gguf"):
        raise refuse("only .gguf model files can be downloaded")
    return filename


def parse_quantization(filename: str) -> str | None:
    """The quantization named in a GGUF file name (``Q4_K_M``, ``IQ2_XS``, ``BF16``...)."""
    base = filename.rsplit("/", 1)[-1]
    match = _QUANT_IN_NAME.search(_SPLIT.sub(".gguf", base))
    return match.group(1).upper() if match else None


def split_part(filename: str) -> tuple[int, int] | None:
    """(part, parts) for ``...-00001-of-00003.gguf``, else None."""
    match = _SPLIT.search(filename)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


# -- search and files ----------------------------------------------------------------------


def search_models(
    query: str,
    *,
    sort: SortOrder = "downloads",
    limit: int = 30,
    token: str | None = None,
) -> list[HubRepo]:
    """Model repositories with GGUF files whose id contains ``query``, best first."""
    if sort not in _SORT_KEYS:
        raise InvalidInputError(f"Unknown sort order {sort!r}; use downloads, likes or recent.")
    if limit < 1:
        raise InvalidInputError("The search limit must be at least 1.")
    check_online()
    check_reachable("search for models")
    api = _api(token)
    with _hub_errors("search for models"):
        infos = list(
            api.list_models(
                search=query.strip() or None,
                filter="gguf",
                sort=_SORT_KEYS[sort],  # type: ignore[arg-type]
                limit=limit,
                expand=["downloads", "likes", "lastModified", "gated", "tags"],
            )
        )
    return [
        HubRepo(
            repo_id=info.id,
            downloads=int(info.downloads or 0),
            likes=int(info.likes or 0),
            last_modified=info.last_modified.isoformat() if info.last_modified else None,
            gated=bool(info.gated),
            tags=tuple(info.tags or ()),
        )
        for info in infos
    ]


def list_gguf_files(
    repo_id: str, *, revision: str | None = None, token: str | None = None
) -> tuple[str, list[HubFile]]:
    """The commit ``revision`` resolves to and the repo's GGUF files at that commit."""
    validate_repo_id(repo_id)
    check_online()
    check_reachable(f"read the files of {repo_id}")
    api = _api(token)
    with _hub_errors(f"read the files of {repo_id}", repo_id):
        info = api.model_info(
            repo_id, revision=revision, files_metadata=True, timeout=METADATA_TIMEOUT_S
        )
    commit = info.sha
    if not commit:
        raise NetworkError(f"The hub did not say which commit {repo_id} is at; try again.")
    gguf = info.gguf if isinstance(info.gguf, dict) else {}
    arch = gguf.get("architecture")
    architecture = arch if isinstance(arch, str) and arch else None
    licence = next(
        (t.split(":", 1)[1] for t in info.tags or () if t.startswith("license:")), None
    )
    files = []
    for sibling in info.siblings or []:
        name = sibling.rfilename
        if not name.lower().endswith(".gguf"):
            continue
        lfs = sibling.lfs
        files.append(
            HubFile(
                repo_id=repo_id,
                filename=name,
                revision=commit,
                size_bytes=sibling.size if sibling.size is not None else lfs.size if lfs else None,
                sha256=lfs.sha256.lower() if lfs and lfs.sha256 else None,
                quantization=parse_quantization(name),
                architecture=architecture,
                licence=licence,
            )
        )
    files.sort(key=lambda f: f.filename)
    return commit, files


def check_architecture(file: HubFile, *, token: str | None = None) -> tuple[bool, str]:
    """Whether the installed llama.cpp can run ``file``, and a sentence saying so.

    Uses the hub's ``gguf`` summary when it has one; otherwise reads only the first
    MiB of the file (Range request, growing up to 16 MiB) and checks its metadata.
    """
    architecture = file.architecture
    if architecture is None:
        try:
            architecture = fetch_architecture(file, token=token)
        except ModelFileError as exc:
            return False, exc.message
    if architecture in supported_architectures():
        return True, f"{file.filename}: architecture '{architecture}' is supported."
    return False, (
        f"{file.filename}: architecture '{architecture}' is not supported by the installed "
        "llama.cpp (needs a newer engine); update slmdesk to run this model."
    )


def fetch_architecture(file: HubFile, *, token: str | None = None) -> str:
    """Read ``general.architecture`` from the start of a hub file, fetching as little as can be."""
    safe_filename(file.filename)
    wanted = PREFIX_FIRST_BYTES
    data = b""
    total = file.size_bytes
    while True:
        if total is not None:
            wanted = min(wanted, total)
        if len(data) < wanted:
            response = open_hub_file(
                file.repo_id, file.filename, file.revision,
                start=len(data), end=wanted - 1, token=token,
            )
            try:
                if response.status == 200 and data:
                    data = b""  # the server ignored the range: it starts from the top
                if total is None:
                    total = response.total_size
                data += response.read_at_most(wanted - len(data))
            finally:
                response.close()
        size = total if total is not None else len(data)
        metadata = read_gguf_prefix(data, file_size=size, label=file.filename)
        if metadata is not None:
            arch = metadata.get("general.architecture")
            assert isinstance(arch, str)  # read_gguf_prefix checked it
            return arch
        if len(data) >= size or wanted >= PREFIX_MAX_BYTES:
            raise ModelFileError(
                f"{file.filename}: its metadata is longer than {PREFIX_MAX_BYTES >> 20} MiB, "
                "so slmdesk cannot check it before downloading"
            )
        wanted = min(wanted * 2, PREFIX_MAX_BYTES)


# -- file bytes ------------------------------------------------------------------------------


class HubUnreachableError(NetworkError):
    """The connection failed or the hub had a server error: worth trying again later."""


class HubOfflineError(HubUnreachableError):
    """No network path to the hub (name not resolved, connection refused, no route):
    trying again at once would only make the person wait, so nobody retries it."""


class HTTPStatusError(NetworkError):
    """The hub (or its CDN) answered a file request with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying: a server error, a timeout or rate limiting."""
        return self.status >= 500 or self.status in (408, 429)


class HubResponse:
    """An open file response: status, headers, bounded reads and an abort from any thread."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self.connection = connection
        self.response = response
        self.status = response.status
        self._lock = threading.Lock()
        self._aborted = False

    def header(self, name: str) -> str | None:
        return self.response.getheader(name)

    @property
    def etag(self) -> str | None:
        return self.header("ETag")

    @property
    def content_length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value and value.isdigit() else None

    @property
    def content_range(self) -> tuple[int, int, int | None] | None:
        """(first, last, total) of a 206 reply."""
        value = self.header("Content-Range") or ""
        match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
        if not match:
            return None
        total = None if match.group(3) == "*" else int(match.group(3))
        return int(match.group(1)), int(match.group(2)), total

    @property
    def total_size(self) -> int | None:
        if self.status == 206:
            parsed = self.content_range
            return parsed[2] if parsed else None
        return self.content_length

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" at the end. Raises ``OSError``/``HTTPException`` on a drop."""
        return self.response.read1(n)

    def read_at_most(self, n: int) -> bytes:
        return b"".join(chunks_up_to(self.read, n))

    def abort(self) -> None:
        """Unblock a read in another thread at once (pause, cancel, shutdown)."""
        with self._lock:
            self._aborted = True
            sock = self.connection.sock
            if sock is not None:
                # shutdown() wakes a recv() blocked in another thread; close() does not.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def aborted(self) -> bool:
        return self._aborted

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self.connection.close()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _proxy_for(url: urllib.parse.SplitResult) -> str | None:
    """The environment's proxy for ``url``, None for a direct connection."""
    host = url.hostname or ""
    proxy = None if _is_loopback(host) else urllib.request.getproxies().get(url.scheme)
    if proxy and urllib.request.proxy_bypass(host):
        return None
    return proxy


def check_reachable(what: str) -> None:
    """Open (and close) one TCP connection to the hub, or its proxy, within
    ``PROBE_TIMEOUT_S``; raise ``HubOfflineError`` at once when there is no network.

    Only the first hop is checked; HTTP errors past it stay the caller's to handle.
    """
    endpoint = hub_endpoint()
    url = urllib.parse.urlsplit(endpoint)
    proxy = _proxy_for(url)
    if proxy:
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except TimeoutError as exc:
        raise HubOfflineError(
            f"Cannot reach the Hugging Face Hub at {endpoint} to {what}: {host} did not "
            f"answer within {PROBE_TIMEOUT_S:g} s. Check your connection and try again."
        ) from exc
    except OSError as exc:
        raise _cannot_reach(exc, f"the Hugging Face Hub at {endpoint} to {what}",
                            " Check your connection and try again.") from exc


def _connect(
    url: urllib.parse.SplitResult, timeout: float
) -> tuple[http.client.HTTPConnection, str]:
    """A connection for ``url`` (through the environment's proxy) and the request target."""
    host = url.hostname or ""
    port = url.port
    target = url.path or "/"
    if url.query:
        target += "?" + url.query
    proxy = _proxy_for(url)
    conn: http.client.HTTPConnection
    if proxy:
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(
                p.hostname or "", p.port or 8080, timeout=timeout, context=_ssl_context()
            )
            conn.set_tunnel(host, port or 443)
        else:
            conn = http.client.HTTPConnection(p.hostname or "", p.port or 8080, timeout=timeout)
            target = urllib.parse.urlunsplit(url)
    elif url.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_ssl_context())
    elif url.scheme == "http":
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        raise NetworkError(f"Cannot download from {url.scheme}:// addresses.")
    return conn, target


def file_url(repo_id: str, filename: str, revision: str) -> str:
    """The resolve URL of a file at a revision, on the configured endpoint."""
    from huggingface_hub import hf_hub_url

    url: str = hf_hub_url(repo_id, filename, revision=revision, endpoint=hub_endpoint())
    return url


def open_hub_file(
    repo_id: str,
    filename: str,
    revision: str,
    *,
    start: int = 0,
    end: int | None = None,
    if_range: str | None = None,
    token: str | None = None,
    timeout: float = METADATA_TIMEOUT_S,
    on_open: Any = None,
) -> HubResponse:
    """GET a hub file (bytes ``start``..``end``), following redirects; 200 or 206 only.

    ``timeout`` bounds the connect and every single read, which makes it the stall
    watchdog of a download. ``on_open(response)`` is called as soon as the response
    exists, so another thread can abort it. The token goes to the hub only, never to a
    CDN host it redirects to. Raises ``HTTPStatusError`` for an error status and
    ``NetworkError`` for a connection failure.
    """
    check_online()
    safe_filename(filename)
    url = file_url(repo_id, filename, revision)
    hub_host = urllib.parse.urlsplit(url).hostname
    bearer = hub_token(token)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        headers = {"User-Agent": f"slmdesk/{__version__}", "Accept-Encoding": "identity"}
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end))
            # If-Range takes a strong validator only; with a weak one, send none (the
            # pinned commit and the sha256 check still stop a spliced file).
            if if_range and not if_range.startswith("W/"):
                headers["If-Range"] = if_range
        if bearer and parts.hostname == hub_host:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            conn, target = _connect(parts, timeout)
            conn.request("GET", target, headers=headers)
            raw = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise _cannot_reach(exc, f"{parts.hostname} to download {filename}") from exc
        response = HubResponse(conn, raw)
        if raw.status in (301, 302, 303, 307, 308):
            location = raw.getheader("Location")
            response.close()
            if not location:
                raise NetworkError(f"The hub redirected {filename} to nowhere; try again later.")
            url = urllib.parse.urljoin(url, location)
            continue
        if raw.status in (200, 206):
            if on_open is not None:
                on_open(response)
            return response
        code = raw.getheader("X-Error-Code") or ""
        response.close()
        raise HTTPStatusError(_status_message(raw.status, code, repo_id, filename), raw.status)
    raise NetworkError(f"Too many redirects while downloading {filename}; try again later.")


def _status_message(status: int, code: str, repo_id: str, filename: str) -> str:
    if code == "GatedRepo" or (status in (401, 403) and code != "RepoNotFound"):
        if code == "GatedRepo" or status == 401:
            return gated_message(repo_id)
        return f"The hub refused access to {repo_id}/{filename} (HTTP {status})."
    if status in (401, 404) or code in ("RepoNotFound", "EntryNotFound", "RevisionNotFound"):
        return f"{repo_id} has no file {filename} at that revision (HTTP {status})."
    if status == 416:
        return f"The hub could not serve the requested part of {filename} (HTTP 416)."
    if status == 429:
        return "The hub is rate limiting downloads (HTTP 429); slmdesk will retry."
    return f"The hub answered HTTP {status} for {filename}; try again later."
