"""The gate in front of every request: Host check, browser origins (CORS), token, request log."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slmdesk.server.config import ServerConfig, is_loopback

log = logging.getLogger("slmdesk.server.access")

ALLOWED_HEADERS = "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project"


@dataclass(frozen=True)
class RequestRecord:
    """One answered request, for the request log."""

    at: float  # time.time() when it came
    method: str
    path: str
    status: int
    seconds: float


class RequestLog:
    """The last requests with their timings (the window's Server panel shows them)."""

    def __init__(self, size: int = 500) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
        log.info("%s %s %d %.3fs", record.method, record.path, record.status, record.seconds)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


async def _answer(send: Send, status: int, body: dict[str, Any] | None,
                  headers: dict[str, str] | None = None) -> None:
    payload = b"" if body is None else json.dumps(body).encode("utf-8")
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
           for k, v in (headers or {}).items()]
    if body is not None:
        raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(len(payload)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _error(message: str, type_: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class AccessGuard:
    """ASGI middleware: refuse before any route runs what this server must not answer.

    - a Host header that is not this server's address (a web page that rebinds its own
      name to 127.0.0.1 would otherwise reach the API as "same origin");
    - a browser ``Origin`` the user did not list (403 naming the setting), answering
      the CORS preflight of the listed ones;
    - a missing or wrong token (401 ``authentication_error``) when a token is set.
    """

    def __init__(self, app: ASGIApp, config: ServerConfig, request_log: RequestLog) -> None:
        self.app = app
        self.config = config
        self.request_log = request_log
        self._token = config.token.encode("utf-8") if config.token else None
        hosts = {"127.0.0.1", "localhost", "::1", config.host.casefold()}
        self._any_host = not is_loopback(config.host) and config.host in ("0.0.0.0", "::")
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, logged_send)
        finally:
            self.request_log.add(RequestRecord(
                time.time(), scope.get("method", ""), scope.get("path", ""), status[0],
                time.perf_counter() - started))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        host = _host_name(headers.get("host", "")).casefold()
        if not self._any_host and host not in self._hosts:
            await _answer(send, 403, _error(
                f"This server answers requests addressed to {self.config.host}, not '{host}'.",
                "permission_error", "host_not_allowed"))
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.config.cors_origins:
            await _answer(send, 403, _error(
                f"Browser pages from {origin} may not use this server. To allow them, start "
                f"it with --cors-origin {origin} (the server's 'CORS origins' setting).",
                "permission_error", "origin_not_allowed"))
            return
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
        if origin and scope["method"] == "OPTIONS" \
                and "access-control-request-method" in headers:
            await _answer(send, 204, None, {
                **cors,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            })
            return
        if self._token is not None and not self._authorized(headers):
            await _answer(send, 401, _error(
                "Missing or wrong API key: send 'Authorization: Bearer TOKEN' with the "
                "server's token.", "authentication_error", "invalid_api_key"),
                {**cors, "WWW-Authenticate": "Bearer"})
            return
        if not cors:
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in cors.items()]

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, cors_send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        assert self._token is not None
        return scheme.casefold() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), self._token)
