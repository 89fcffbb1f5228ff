"""Errors the server answers with, in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

from typing import Any

from slmdesk.errors import (
    ContextOverflowError,
    InvalidInputError,
    ModelFileError,
    NotEnoughMemoryError,
    NotFoundError,
    TemplateError,
    UserFacingError,
)


class ApiError(Exception):
    """An HTTP error with an OpenAI-style body."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error",
        param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def reply_interrupted() -> ApiError:
    """A reply the server stopped before it finished (it is stopping, or its model was
    unloaded): an error, so that a client never takes the text so far for a whole reply."""
    return ApiError(503, "The reply was stopped before it finished: the server is stopping or "
                    "its model was unloaded. The text so far is incomplete; send the request "
                    "again.", type="server_error", code="reply_interrupted")


def bad_field(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def unsupported_field(param: str) -> ApiError:
    return ApiError(
        400, f"'{param}' is not supported by slmdesk's server; leave it out of the request.",
        param=param, code="unsupported_parameter",
    )


def model_not_found(ref: str, detail: str) -> ApiError:
    return ApiError(404, f"The model '{ref}' does not exist here: {detail}",
                    param="model", code="model_not_found")


def from_user_facing(exc: UserFacingError) -> ApiError:
    """The HTTP answer for an expected failure of the core."""
    if isinstance(exc, ContextOverflowError):
        return ApiError(400, exc.message, code="context_length_exceeded")
    if isinstance(exc, NotFoundError):
        return ApiError(404, exc.message, code="not_found")
    if isinstance(exc, (InvalidInputError, TemplateError)):
        return ApiError(400, exc.message, code="invalid_value")
    if isinstance(exc, (ModelFileError, NotEnoughMemoryError)):
        return ApiError(503, exc.message, type="server_error", code="model_unavailable")
    return ApiError(500, exc.message, type="server_error")
