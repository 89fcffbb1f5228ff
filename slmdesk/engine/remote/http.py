"""HTTP to one remote engine: JSON requests and server-sent event streams, with timeouts.

Plain ``http.client`` (standard library): one connection per request, so several threads can
call the same ``RemoteHttp`` at once, and a socket timeout that applies to every read, so an
engine that stops sending mid-stream is noticed after ``read_timeout_s`` instead of hanging.
Every failure becomes a ``RemoteEngineError`` whose text names the engine and what to do.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slmdesk.errors import RemoteEngineError

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0  # no byte for this long from a working engine means it is stalled
MAX_ERROR_BODY = 2000


class StreamInterrupted(RemoteEngineError):
    """The engine closed the connection (or died) before the stream's end."""


class StreamStalled(RemoteEngineError):
    """The engine sent nothing for longer than the read timeout."""


class MalformedStream(RemoteEngineError):
    """The engine sent an event that is not the JSON the protocol promises."""


def normalise_base_url(url: str) -> str:
    """``http://host:port`` without a trailing slash or ``/v1`` (both forms are accepted)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteEngineError(
            f"'{url}' is not an engine address: give http://HOST:PORT (or https://…), "
            "e.g. http://127.0.0.1:8080."
        )
    return url


@dataclass(frozen=True)
class RemoteHttp:
    """Requests to the engine at ``base_url`` (with ``Authorization: Bearer`` when keyed)."""

    base_url: str
    api_key: str | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S

    def get_json(self, path: str) -> Any:
        """GET ``path`` and return its JSON body."""
        return self._json(self._request("GET", path, None))

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path`` and return the JSON answer."""
        return self._json(self._request("POST", path, body))

    def post_events(self, path: str, body: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """POST and yield each server-sent event's JSON ``data`` until ``[DONE]`` or the end.

        Raises ``StreamInterrupted`` when the connection breaks, ``StreamStalled`` when the
        engine goes quiet, ``MalformedStream`` for an event that is not a JSON object.
        Closing the generator closes the connection (the engine then stops generating).
        """
        conn, response = self._request("POST", path, body)
        try:
            yield from self._events(response)
        finally:
            conn.close()

    # internals ----------------------------------------------------------------------------
    def _events(self, response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
        data: list[str] = []
        while True:
            try:
                raw = response.readline()
            except TimeoutError as exc:
                raise self._stalled() from exc
            except (OSError, http.client.HTTPException) as exc:
                raise StreamInterrupted(
                    f"The engine at {self.base_url} broke the connection mid-stream ({exc})."
                ) from exc
            if not raw:
                if data:  # an event without its closing blank line: the engine died mid-write
                    raise StreamInterrupted(self._closed_message())
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                continue
            if line or not data:
                continue  # comments (": ping"), event names, ids; blank lines between events
            payload = "\n".join(data)
            data = []
            if payload.strip() == "[DONE]":
                return
            yield self._event(payload)

    def _event(self, payload: str) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise MalformedStream(
                f"The engine at {self.base_url} sent a malformed stream event "
                f"(not JSON: {payload[:80]!r}). Is it an OpenAI-compatible server?"
            ) from exc
        if not isinstance(event, dict):
            raise MalformedStream(
                f"The engine at {self.base_url} sent a stream event that is not an object."
            )
        if "error" in event:
            raise RemoteEngineError(
                f"The engine at {self.base_url} failed mid-stream: {_error_text(event)}")
        return event

    def _stalled(self) -> StreamStalled:
        return StreamStalled(f"The engine at {self.base_url} sent nothing for "
                             f"{self.read_timeout_s:g} s; it seems stalled.")

    def _closed_message(self) -> str:
        return f"The engine at {self.base_url} closed the connection before the reply ended."

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port, timeout=self.connect_timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(host, parts.port, timeout=self.connect_timeout_s)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        prefix = urlsplit(self.base_url).path
        headers = {"Accept": "application/json, text/event-stream"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn = self._connection()
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.read_timeout_s)
            conn.request(method, prefix + path, body=data, headers=headers)
            response = conn.getresponse()
        except TimeoutError as exc:
            conn.close()
            raise StreamStalled(
                f"The engine at {self.base_url} did not answer {path} within "
                f"{self.read_timeout_s:g} s."
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RemoteEngineError(
                f"Cannot reach the engine at {self.base_url}: {exc}. Is it running, and is "
                "the address right?"
            ) from exc
        if response.status >= 400:
            try:
                text = response.read(MAX_ERROR_BODY).decode("utf-8", errors="replace")
            except (OSError, http.client.HTTPException):
                text = ""
            finally:
                conn.close()
            raise RemoteEngineError(self._status_message(path, response.status, text))
        return conn, response

    def _status_message(self, path: str, status: int, text: str) -> str:
        detail = text.strip()
        try:
            detail = _error_text(json.loads(text))
        except (json.JSONDecodeError, TypeError, AttributeError):
            pass
        what = {401: "refused the API key (401)", 403: "refused the request (403)",
                404: f"has no {path} (404)"}.get(status, f"answered {status} to {path}")
        hint = " Check --api-key." if status in (401, 403) else ""
        return f"The engine at {self.base_url} {what}: {detail[:300] or 'no details'}.{hint}"

    def _json(self, exchange: tuple[http.client.HTTPConnection, http.client.HTTPResponse]) -> Any:
        conn, response = exchange
        try:
            body = response.read()
        except TimeoutError as exc:
            raise self._stalled() from exc
        except (OSError, http.client.HTTPException) as exc:
            raise StreamInterrupted(self._closed_message()) from exc
        finally:
            conn.close()
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedStream(
                f"The engine at {self.base_url} answered with something that is not JSON "
                f"({body[:80]!r})."
            ) from exc


def _error_text(data: Any) -> str:
    """The message of an OpenAI-style (or llama-server) error body."""
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
