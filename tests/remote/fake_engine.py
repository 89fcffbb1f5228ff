"""A tiny OpenAI-compatible engine that misbehaves on demand, for the remote fault tests.

Only the faults are faked (their timing must be controlled); the main paths run against real
peers (llama-server, slmdesk serve) in test_real_peers.py. With ``scoring`` on, it also
scores as vLLM does (/tokenize, /detokenize, /v1/completions with echo:
tests/remote/vllm_responses.py), one token per byte, so that the window's tabs can classify
through it; off (as the fixture leaves it), those answer 404 like a chat-only engine.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.remote.vllm_responses import echo_completion

MODEL = "fake-model"
# What a check of this engine finds when it scores like vLLM (EngineRepository.record_check).
SCORING_FEATURES = {"tokenize": True, "prompt_logprobs": True}


def _chunk(text: str | None, finish: str | None = None) -> str:
    delta = {"content": text} if text is not None else {}
    event = {"id": "c1", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n"


class FakeEngine:
    """Serves on 127.0.0.1; ``mode`` picks how /v1/chat/completions behaves."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.scoring = False
        self.delay = 0.0  # seconds each scoring request waits: time to kill a client mid-run
        self.requests: list[dict[str, Any]] = []
        app = Starlette(routes=[
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/tokenize", self.tokenize, methods=["POST"]),
            Route("/detokenize", self.detokenize, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
        ])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off",
                                                    http="h11", ws="none"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeEngine:
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": MODEL, "object": "model", "owned_by": "fake"}]})

    def _no_scoring(self) -> Response | None:
        return None if self.scoring else JSONResponse({"detail": "Not Found"}, status_code=404)

    async def tokenize(self, request: Request) -> Response:
        if (refused := self._no_scoring()) is not None:
            return refused
        body = await request.json()
        tokens = list(str(body.get("prompt", "")).encode("utf-8"))  # a token per byte
        return JSONResponse({"count": len(tokens), "max_model_len": 2048, "tokens": tokens})

    async def detokenize(self, request: Request) -> Response:
        if (refused := self._no_scoring()) is not None:
            return refused
        body = await request.json()
        text = bytes(int(t) % 256 for t in body.get("tokens", [])).decode("utf-8", "replace")
        return JSONResponse({"prompt": text})

    async def completions(self, request: Request) -> Response:
        if (refused := self._no_scoring()) is not None:
            return refused
        body = await request.json()
        self.requests.append(body)
        await asyncio.sleep(self.delay)
        prompts = body["prompt"]
        return JSONResponse(echo_completion(prompts if isinstance(prompts[0], list)
                                            else [prompts]))

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.mode == "500":
            return JSONResponse({"error": {"message": "the GPU caught fire",
                                           "type": "server_error"}}, status_code=500)
        return StreamingResponse(self._events(self.mode), media_type="text/event-stream")

    async def _events(self, mode: str) -> AsyncIterator[str]:
        yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'role': 'assistant'}}]})}\n\n"
        for word in ("Hello", " there", ","):
            yield _chunk(word)
        if mode == "slow":  # a long reply, one word every 50 ms: time to press Stop
            for _ in range(400):
                await asyncio.sleep(0.05)
                yield _chunk(" and")
        if mode == "killed":
            raise RuntimeError("the engine process died")  # uvicorn drops the connection
        if mode == "stalled":
            await asyncio.sleep(30)
        if mode == "malformed":
            yield "data: {this is not json\n\n"
        yield _chunk(" friend.")
        yield _chunk(None, "stop")
        usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"
