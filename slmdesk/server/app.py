"""The ASGI application: routes behind the access guard, every error in OpenAI's shape."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from slmdesk.server.config import ServerConfig
from slmdesk.server.errors import ApiError
from slmdesk.server.history import ApiChatHistory
from slmdesk.server.models import ModelLibrary
from slmdesk.server.routes import ServerApi, api_error_response
from slmdesk.server.security import AccessGuard, RequestLog
from slmdesk.server.worker import EngineWorker


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    return api_error_response(ApiError(exc.status_code, str(exc.detail), type=kind,
                                       headers=dict(exc.headers or {})))


def build_app(config: ServerConfig, worker: EngineWorker, library: ModelLibrary,
              request_log: RequestLog | None = None, history: ApiChatHistory | None = None
              ) -> Starlette:
    """The server's ASGI app over ``worker``'s engine; ``worker`` is started by the caller.
    With ``history``, chat requests are kept in the chat history."""
    api = ServerApi(config, worker, library, history)
    return Starlette(
        routes=api.routes(),
        middleware=[Middleware(AccessGuard, config=config,
                               request_log=request_log or RequestLog())],
        exception_handlers={HTTPException: _http_error},
    )
