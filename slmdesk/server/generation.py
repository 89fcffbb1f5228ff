"""Chat and text completions as engine jobs: the work on the engine thread, events to asyncio."""

from __future__ import annotations

import asyncio
import codecs
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slmdesk.engine.llama_engine import LlamaEngine, SequenceRequest
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.engine.structured import OutputOptions, TokenLogprob
from slmdesk.errors import ContextOverflowError
from slmdesk.server.protocol import ChatRequest, CompletionRequest, GenerationRequest


class EventChannel:
    """Events from the engine thread to one request's coroutine, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(self, kind: str, payload: Any = None) -> None:
        """Callable from any thread; dropped once the loop is closed (the server stopped
        while the engine still ran: nobody listens any more)."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, payload))
        except RuntimeError:
            if not self._loop.is_closed():
                raise

    async def get(self) -> tuple[str, Any]:
        return await self._queue.get()


@dataclass
class TokenEntry:
    """A generated token with its text and where that text starts in the reply."""

    start: int
    text: str
    info: TokenLogprob


@dataclass
class TokenTrack:
    """Generated tokens, released once the reply's text covers them.

    Token texts are decoded with their own incremental UTF-8 decoder, so a character split
    across tokens belongs to the token that completes it and the texts join to the reply.
    Tokens past the end of the reply (a stop string held back) are never released.
    """

    entries: list[TokenEntry] = field(default_factory=list)
    _chars: int = 0
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(
        errors="replace"))

    def add(self, info: TokenLogprob) -> None:
        text = self._decoder.decode(info.piece, final=False)
        self.entries.append(TokenEntry(self._chars, text, info))
        self._chars += len(text)

    def take(self, covered_chars: int) -> list[TokenEntry]:
        """The tokens whose text starts before ``covered_chars``, in order, once each."""
        n = 0
        while n < len(self.entries) and self.entries[n].start < covered_chars:
            n += 1
        out, self.entries = self.entries[:n], self.entries[n:]
        return out


def sampling_for(req: GenerationRequest, base: SamplingParams, max_tokens_limit: int
                 ) -> SamplingParams:
    """The app's sampling settings with the request's fields on top."""
    sampling = base.merged(**req.sampling)
    if "max_tokens" not in req.sampling and sampling.max_tokens > max_tokens_limit:
        sampling = sampling.merged(max_tokens=max_tokens_limit)
    return sampling


@dataclass
class GenerationJob:
    """One completion on the engine: streamed pieces go to ``on_piece`` as they come."""

    request: ChatRequest | CompletionRequest
    sampling: SamplingParams
    cancel: threading.Event
    on_started: Callable[[int], None] | None = None  # prompt tokens, once the prompt is fine
    on_piece: Callable[[str, list[TokenEntry]], None] | None = None
    on_text: Callable[[str], None] | None = None  # the reply's text as it grows (to store it)
    track: TokenTrack = field(default_factory=TokenTrack)
    text_chars: int = 0

    def __call__(self, engine: LlamaEngine) -> GenerationResult:
        req = self.request
        if isinstance(req, ChatRequest):
            self._started(self._check_chat_fits(engine, req))
            return engine.stream_chat(req.messages, self.sampling, cancel=self.cancel,
                                      on_text=self._text, output=self._output())
        tokens = engine.tokenize_prompt(req.prompt)
        self._started(len(tokens))
        return engine.stream_tokens(tokens, self.sampling, cancel=self.cancel,
                                    on_text=self._text, output=self._output())

    def sequence(self, engine: LlamaEngine, on_done: Callable[[GenerationResult], None],
                 on_error: Callable[[BaseException], None]) -> SequenceRequest:
        """The same reply as one sequence of a batch (``EngineJob.sequence``): the same
        checks and callbacks; the result goes to ``on_done``."""
        req = self.request
        fields: dict[str, Any] = {"on_done": on_done, "on_error": on_error,
                                  "cancel": self.cancel, "on_text": self._text,
                                  "output": self._output()}
        if isinstance(req, ChatRequest):
            self._started(self._check_chat_fits(engine, req))
            return engine.chat_sequence(req.messages, self.sampling, **fields)
        tokens = engine.tokenize_prompt(req.prompt)
        self._started(len(tokens))
        return engine.tokens_sequence(tokens, self.sampling, **fields)

    def _output(self) -> OutputOptions:
        req = self.request
        return OutputOptions(grammar=req.grammar,
                             on_token=self.track.add if req.logprobs else None,
                             top_logprobs=req.top_logprobs)

    def _started(self, prompt_tokens: int) -> None:
        if self.on_started is not None:
            self.on_started(prompt_tokens)

    def _check_chat_fits(self, engine: LlamaEngine, req: ChatRequest) -> int:
        """Refuse a prompt that does not fit rather than drop the oldest turns silently."""
        info = engine.info
        assert info is not None
        tokens = engine.tokenize_prompt(engine.render(req.messages))
        reserve = min(max(1, self.sampling.max_tokens), info.n_ctx // 4)
        if len(tokens) > info.n_ctx - reserve:
            raise ContextOverflowError(
                f"The messages are {len(tokens)} tokens; with {reserve} kept for the reply "
                f"the model's context ({info.n_ctx} tokens) holds {info.n_ctx - reserve}."
            )
        return len(tokens)

    def _text(self, piece: str) -> None:
        self.text_chars += len(piece)
        if self.on_text is not None:
            self.on_text(piece)
        if self.on_piece is not None:
            self.on_piece(piece, self.track.take(self.text_chars))

    def remaining_tokens(self, result: GenerationResult) -> list[TokenEntry]:
        """After the end: the tokens the reply's text covers that were not released yet."""
        return self.track.take(len(result.text))
