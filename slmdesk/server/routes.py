"""The endpoints: models, chat and text completions, embeddings, and classify (under /v1)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.errors import NotFoundError, UserFacingError
from slmdesk.server.classify import ClassifyService
from slmdesk.server.config import ServerConfig
from slmdesk.server.errors import (
    ApiError,
    from_user_facing,
    model_not_found,
    reply_interrupted,
)
from slmdesk.server.generation import EventChannel, GenerationJob, sampling_for
from slmdesk.server.history import ApiChatHistory, StoredReply
from slmdesk.server.models import ModelLibrary
from slmdesk.server.protocol import (
    ChatRequest,
    CompletionRequest,
    parse_chat,
    parse_completion,
    parse_embeddings,
)
from slmdesk.server.responses import ChatShapes, CompletionShapes, model_object, sse
from slmdesk.server.worker import EngineJob, EngineWorker, QueueFullError, WorkerStoppedError
from slmdesk.store.models import ModelRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
DISCONNECT_POLL_S = 0.25


class ClientGone(Exception):
    """The client closed the connection while its request waited or ran."""


class SSEResponse(StreamingResponse):
    """Server-sent events that stop (and so cancel the generation) when the client leaves.

    Starlette only watches for a disconnect under ASGI spec < 2.4; uvicorn drops writes to
    a closed connection silently, so the reply would run to its end. Here the disconnect
    is always watched, and the event source is closed either way.
    """

    def __init__(self, events: AsyncIterator[str]) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                try:
                    await self.stream_response(send)
                finally:
                    group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, refusing one over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"The request body is over the limit of {limit} bytes.",
                       code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"The request body is over the limit of {limit} bytes.",
                           code="body_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}",
                       code="invalid_json") from exc


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def as_api_error(exc: BaseException) -> ApiError:
    """The HTTP answer for an exception raised while a request was handled."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, QueueFullError):
        return ApiError(429, f"The engine is busy and its queue is full; retry in "
                        f"{exc.retry_after_s} s.", type="rate_limit_error", code="queue_full",
                        headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, WorkerStoppedError):
        return ApiError(503, "The server is stopping.", type="server_error")
    if isinstance(exc, UserFacingError):
        return from_user_facing(exc)
    log.error("request failed", exc_info=exc)
    return ApiError(500, f"Internal error: {type(exc).__name__}: {exc}", type="server_error")


class ServerApi:
    """The endpoints over one engine worker and the app's model library."""

    def __init__(self, config: ServerConfig, worker: EngineWorker, library: ModelLibrary,
                 history: ApiChatHistory | None = None) -> None:
        self.config = config
        self.worker = worker
        self.library = library
        self.history = history  # where chat requests are kept (None: they are not)
        self.classify_service = ClassifyService(library)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self._handled(self.models), methods=["GET"]),
            Route("/v1/chat/completions", self._handled(self.chat), methods=["POST"]),
            Route("/v1/completions", self._handled(self.completions), methods=["POST"]),
            Route("/v1/embeddings", self._handled(self.embeddings), methods=["POST"]),
            Route("/v1/classify", self._handled(self.classify), methods=["POST"]),
        ]

    @staticmethod
    def _handled(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
                return response
            except (ClientGone, ClientDisconnect):
                return Response(status_code=499)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an HTTP answer
                return api_error_response(as_api_error(exc))

        return endpoint

    # endpoints -----------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        models = await run_in_threadpool(self.library.list_models)
        loaded = self.worker.loaded_model
        data = [model_object(m, loaded is not None and loaded.path == m.path) for m in models]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        req = parse_chat(await self._body(request), self.config.max_tokens_limit)
        return await self._generate(request, req)

    async def completions(self, request: Request) -> Response:
        req = parse_completion(await self._body(request), self.config.max_tokens_limit)
        return await self._generate(request, req)

    async def embeddings(self, request: Request) -> Response:
        req = parse_embeddings(await self._body(request), self.config.max_texts)
        model = await self._model(req.model)

        def embed(engine: LlamaEngine) -> tuple[list[list[float]], int]:
            try:
                return engine.embed(req.inputs)
            except RuntimeError as exc:
                raise ApiError(501, f"This model cannot produce embeddings: {exc}",
                               type="server_error", code="embeddings_unsupported") from exc

        vectors, tokens = await self._run(request, EngineJob(embed, model))
        data = [{"object": "embedding", "index": i,
                 "embedding": _base64_floats(v) if req.base64 else v}
                for i, v in enumerate(vectors)]
        return JSONResponse({"object": "list", "data": data, "model": model.name,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def classify(self, request: Request) -> Response:
        work, model = await run_in_threadpool(
            self.classify_service.prepare, await self._body(request), self.config.max_texts)
        cancel = threading.Event()
        results = await self._run(request, EngineJob(lambda e: work(e, cancel), model, cancel))
        return JSONResponse({"object": "list", "model": model.name, "data": results})

    # helpers -------------------------------------------------------------------------
    async def _body(self, request: Request) -> Any:
        return await read_json(request, self.config.max_body_bytes)

    async def _model(self, ref: str) -> ModelRecord:
        try:
            return await run_in_threadpool(self.library.find, ref)
        except NotFoundError as exc:
            raise model_not_found(ref, exc.message) from exc

    def _submit(self, job: EngineJob[T]) -> EngineJob[T]:
        return self.worker.submit(job)

    async def _run(self, request: Request, job: EngineJob[T]) -> T:
        """Run ``job`` on the engine; if the client leaves meanwhile, cancel it."""
        self._submit(job)
        waiting = asyncio.wrap_future(job.future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_S)
            if done:
                return waiting.result()
            if await request.is_disconnected():
                job.cancel.set()
                raise ClientGone

    async def _generate(self, request: Request, req: ChatRequest | CompletionRequest
                        ) -> Response:
        model = await self._model(req.model)
        settings = await run_in_threadpool(self.library.settings)
        sampling = sampling_for(req, settings.sampling, self.config.max_tokens_limit)
        shapes = ChatShapes(model.name) if isinstance(req, ChatRequest) \
            else CompletionShapes(model.name)
        cancel = threading.Event()
        work = GenerationJob(req, sampling, cancel)
        job = EngineJob(work, model, cancel, sequence=work.sequence)
        stored = self._stored_reply(req, model, work, job)
        if not req.stream:
            result = await self._run(request, job)
            await _written(stored)
            if result.finish_reason == "error":
                raise ApiError(500, result.error or "generation failed", type="server_error")
            if result.finish_reason == "cancelled":
                raise reply_interrupted()
            entries = work.remaining_tokens(result) if req.logprobs else None
            return JSONResponse(shapes.whole(result, entries))
        channel = EventChannel(asyncio.get_running_loop())
        begin = work.on_started

        def started(prompt_tokens: int) -> None:
            if begin is not None:
                begin(prompt_tokens)
            channel.put("started", prompt_tokens)

        work.on_started = started
        work.on_piece = lambda text, entries: channel.put("piece", (text, entries))
        self._submit(job)
        job.future.add_done_callback(lambda f: channel.put("end", f))
        kind, payload = await self._first_event(request, channel, cancel)
        if kind == "end":
            # It ended before the reply began: the prompt was refused, or the load failed.
            raise as_api_error(payload.exception() or RuntimeError("no reply"))
        return SSEResponse(self._events(shapes, req, work, channel, cancel, stored))

    def _stored_reply(self, req: ChatRequest | CompletionRequest, model: ModelRecord,
                      work: GenerationJob, job: EngineJob[Any]) -> StoredReply | None:
        """With ``keep_chats``: a chat request's messages and reply, kept in the history
        from the moment the reply begins (a refused request leaves nothing behind)."""
        if self.history is None or not isinstance(req, ChatRequest):
            return None
        stored = self.history.reply(req.messages, model)
        work.on_started = lambda _prompt_tokens: stored.begin()
        work.on_text = stored.grow
        job.future.add_done_callback(stored.end)
        return stored

    async def _first_event(self, request: Request, channel: EventChannel,
                           cancel: threading.Event) -> tuple[str, Any]:
        while True:
            with anyio.move_on_after(DISCONNECT_POLL_S):
                return await channel.get()
            if await request.is_disconnected():
                cancel.set()
                raise ClientGone

    async def _events(self, shapes: ChatShapes, req: ChatRequest | CompletionRequest,
                      work: GenerationJob, channel: EventChannel, cancel: threading.Event,
                      stored: StoredReply | None = None) -> AsyncIterator[str]:
        usage = req.include_usage
        try:
            if isinstance(req, ChatRequest):
                yield sse(shapes.chunk({"role": "assistant", "content": ""}, with_usage=usage))
            while True:
                kind, payload = await channel.get()
                if kind == "piece":
                    text, entries = payload
                    yield sse(shapes.piece(text, entries if req.logprobs else None, usage))
                elif kind == "end":
                    break
            error = None if payload.cancelled() else payload.exception()
            result = None if error is not None or payload.cancelled() else payload.result()
            if result is None or result.finish_reason == "error":
                message = as_api_error(error).message if error is not None \
                    else (result.error if result is not None else "cancelled")
                yield sse(ApiError(500, message or "generation failed",
                                   type="server_error").body())
            elif result.finish_reason == "cancelled":  # and the client is still here
                yield sse(reply_interrupted().body())
            else:
                tail = work.remaining_tokens(result) if req.logprobs else []
                if tail:
                    yield sse(shapes.piece("", tail, usage))
                finish = "length" if result.finish_reason == "length" else "stop"
                delta: dict[str, Any] = {} if isinstance(req, ChatRequest) else {"content": ""}
                yield sse(shapes.chunk(delta, finish=finish, with_usage=usage))
                if usage:
                    yield sse(shapes.usage_chunk(result))
            await _written(stored)  # once the client has the whole reply, so has the history
            yield sse("[DONE]")
        finally:
            # A no-op once the reply is finished; stops it when the client went away.
            cancel.set()


async def _written(stored: StoredReply | None) -> None:
    """Wait until the history holds the finished reply (no-op when chats are not kept)."""
    if stored is not None:
        await asyncio.wrap_future(stored.done)


def _base64_floats(vector: list[float]) -> str:
    """OpenAI's base64 encoding of an embedding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")

