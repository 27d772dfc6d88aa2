"""Test doubles for the tests and benchmarks; the product never imports this module.

:class:`ScriptedBackend` replays queued chunk streams and records every request.
Like httpx's ``MockTransport``, it lets everything above the backend be tested
honestly and fast, and it drives the benchmarks' overhead run. It ignores stop
strings on purpose (as some servers do), so callers' client-side enforcement is
what gets tested. It lives in ``bot`` rather than ``tests`` because the benchmarks
(``python -m bench``) import it too; a test checks that no other module under
``bot/`` imports it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo, Timings
from bot.errors import BackendError, UnsupportedOperation

__all__ = ["ScriptedBackend", "Script"]

#: a reply to play: chunks of text, an exception to raise, or a function of the request
Script = Sequence[str] | BackendError | Callable[[GenerationRequest], Sequence[str]]


class ScriptedBackend:
    """Plays ``replies`` in order (the last one repeats); records ``requests``."""

    capabilities = Capabilities(streaming=True, tokenize=True, abort=True, model_info=True)

    def __init__(
        self,
        replies: Iterable[Script] = (),
        *,
        n_ctx: int = 4096,
        chunk_delay: float = 0.0,
        first_chunk_delay: float = 0.0,
    ) -> None:
        self.name = "scripted"
        self.replies: deque[Script] = deque(replies)
        self.requests: list[GenerationRequest] = []
        self.n_ctx = n_ctx
        self.chunk_delay = chunk_delay
        self.first_chunk_delay = first_chunk_delay
        self.aborted: list[str | None] = []
        self.closed = False
        self.active = 0

    def queue(self, *replies: Script) -> None:
        """Add replies to play."""
        self.replies.extend(replies)

    def _next(self) -> Script:
        if not self.replies:
            return ["…"]
        return self.replies.popleft() if len(self.replies) > 1 else self.replies[0]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Yield the next scripted reply chunk by chunk."""
        self.requests.append(request)
        script = self._next()
        if isinstance(script, BackendError):
            raise script
        chunks = script(request) if callable(script) else script
        self.active += 1
        try:
            if self.first_chunk_delay:
                await asyncio.sleep(self.first_chunk_delay)
            for i, text in enumerate(chunks):
                if i and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                yield Chunk(text=text)
            yield Chunk(
                done=True,
                timings=Timings(prompt_tokens=_estimate(request.prompt), generated_tokens=len(chunks)),
            )
        finally:
            self.active -= 1

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """A deterministic stand-in tokenizer: about four characters a token."""
        return [_estimate(t) for t in texts]

    async def context_size(self) -> int:
        """The configured context size."""
        return self.n_ctx

    async def health(self) -> Health:
        """Always healthy."""
        return Health(ok=True, detail="scripted", model="scripted", n_ctx=self.n_ctx)

    async def model_info(self) -> ModelInfo:
        """A fixed description."""
        return ModelInfo(name="scripted", n_ctx=self.n_ctx)

    async def load_model(self, name: str) -> ModelInfo:
        """Scripted backends have one model."""
        raise UnsupportedOperation("the scripted backend has a single model", backend=self.name)

    async def abort(self, conversation: str | None = None) -> None:
        """Record the abort."""
        self.aborted.append(conversation)

    async def aclose(self) -> None:
        """Record the close."""
        self.closed = True


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)
