"""What the server refuses before any model work: origins, tokens, hosts, bodies, fields."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from slmdesk.errors import InvalidInputError
from slmdesk.server.config import ServerConfig
from slmdesk.server.runner import LocalServer
from tests.server.conftest import ALLOWED_ORIGIN, TOKEN


def _request(server: LocalServer, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    payload = body if isinstance(body, bytes) else (
        json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=payload, headers=headers or {})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    data = json.loads(raw) if raw else None
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_preflight_from_a_listed_origin_is_answered(served_empty: LocalServer) -> None:
    status, headers, _ = _request(served_empty, "OPTIONS", "/v1/chat/completions", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 204
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert "Authorization" in headers["access-control-allow-headers"]


def test_listed_origin_gets_cors_headers_on_the_answer(served_empty: LocalServer) -> None:
    status, headers, _ = _request(served_empty, "GET", "/v1/models",
                                  headers={"Origin": ALLOWED_ORIGIN, **AUTH})
    assert status == 200
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_other_origin_gets_403_naming_the_setting(served_empty: LocalServer) -> None:
    for method in ("OPTIONS", "GET"):
        status, headers, body = _request(served_empty, method, "/v1/models", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "GET", **AUTH})
        assert status == 403
        assert "access-control-allow-origin" not in headers
        assert "--cors-origin" in body["error"]["message"]
        assert body["error"]["code"] == "origin_not_allowed"


def test_missing_or_wrong_token_gets_401(served_empty: LocalServer) -> None:
    for headers in ({}, {"Authorization": "Bearer nope-nope-nope"}, {"Authorization": TOKEN}):
        status, got, body = _request(served_empty, "GET", "/v1/models", headers=headers)
        assert status == 401
        assert body["error"]["type"] == "authentication_error"
        assert got["www-authenticate"] == "Bearer"


def test_foreign_host_header_is_refused(served_empty: LocalServer) -> None:
    status, _, body = _request(served_empty, "GET", "/v1/models",
                               headers={"Host": "rebound.example:8080", **AUTH})
    assert status == 403 and body["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}], "mirostat": 2},
     "mirostat"),
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"model": "x", "messages": [{"role": "tool", "content": "hi"}]}, "messages[0].role"),
    ({"model": "x", "messages": [{"role": "user", "content": "hi", "tool_calls": []}]},
     "messages[0].tool_calls"),
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6},
     "max_tokens"),
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2},
     "top_logprobs"),
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}],
      "response_format": {"type": "yaml"}}, "response_format.type"),
    ({"model": "x", "messages": []}, "messages"),
])
def test_bad_chat_fields_get_400_naming_the_field(served_empty: LocalServer, body: Any,
                                                  param: str) -> None:
    status, _, answer = _request(served_empty, "POST", "/v1/chat/completions", body, AUTH)
    assert status == 400
    assert answer["error"]["param"] == param


def test_unknown_model_gets_404(served_empty: LocalServer) -> None:
    status, _, answer = _request(served_empty, "POST", "/v1/chat/completions", {
        "model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, AUTH)
    assert status == 404 and answer["error"]["code"] == "model_not_found"


def test_body_over_the_limit_gets_413(served_empty: LocalServer) -> None:
    big = b'{"model": "x", "input": "' + b"a" * (served_empty.config.max_body_bytes + 1) + b'"}'
    status, _, answer = _request(served_empty, "POST", "/v1/embeddings", big, AUTH)
    assert status == 413 and answer["error"]["code"] == "body_too_large"


def test_invalid_json_and_unknown_route_answer_in_openai_shape(served_empty: LocalServer
                                                               ) -> None:
    status, _, answer = _request(served_empty, "POST", "/v1/completions", b"{nope", AUTH)
    assert status == 400 and answer["error"]["code"] == "invalid_json"
    status, _, answer = _request(served_empty, "GET", "/v1/nothing", None, AUTH)
    assert status == 404 and "error" in answer


def test_other_hosts_need_a_token() -> None:
    with pytest.raises(InvalidInputError, match="--token"):
        ServerConfig(host="0.0.0.0").validated()
    assert ServerConfig(host="0.0.0.0", token="long-enough-token").validated()
    assert ServerConfig(host="::1").validated()
    with pytest.raises(InvalidInputError, match="CORS origin"):
        ServerConfig(cors_origins=("localhost:3000",)).validated()
