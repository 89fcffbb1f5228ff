"""The server's settings: address, token, allowed browser origins and request limits."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

from slmdesk.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Chat and completion requests the server's engine decodes together.
DEFAULT_PARALLEL = 4
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.casefold() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def generate_token() -> str:
    """A fresh random API token (URL-safe, 256 bits)."""
    return "sk-slmdesk-" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens and what it accepts."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    # Requests waiting for the engine besides the one it runs; beyond that: 429.
    queue_size: int = 8
    max_body_bytes: int = 4 * 1024 * 1024
    max_tokens_limit: int = 4096  # the most a request may ask for (the context caps too)
    max_texts: int = 1000  # texts in one /v1/classify or /v1/embeddings request
    # Store each chat request and its reply in the app's chat history (off: nothing kept).
    keep_chats: bool = False

    def validated(self) -> ServerConfig:
        """This config, or an ``InvalidInputError`` saying which setting is wrong."""
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(
                f"Listening on {self.host} lets other machines connect: give a token with "
                "--token TOKEN (every request must then send 'Authorization: Bearer TOKEN')."
            )
        if self.token is not None and len(self.token) < 8:
            raise InvalidInputError("The token must be at least 8 characters long.")
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"The port must be between 0 and 65535, not {self.port}.")
        if self.queue_size < 0:
            raise InvalidInputError("The queue size cannot be negative.")
        for origin in self.cors_origins:
            if "://" not in origin or origin.endswith("/"):
                raise InvalidInputError(
                    f"CORS origin '{origin}' must look like http://host:port (no path, no "
                    "trailing slash)."
                )
        return self

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"
