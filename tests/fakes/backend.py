"""An in-process backend whose health and failures a test controls.

Unlike :class:`bot.testing.ScriptedBackend` (which replays queued
replies), this one can be made unhealthy, fail before its first piece, fail in
the middle of a reply, and it counts streams closed before their end: what the
pool and ``serve`` tests need to check routing, fail-over and disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo, Timings
from bot.errors import BackendError, BackendProtocolError, UnsupportedOperation

__all__ = ["FlakyBackend"]


@dataclass(eq=False)
class FlakyBackend:
    """``pieces`` is every reply; ``fail`` is raised before the first piece; ``fail_after``
    raises a BackendProtocolError after that many pieces; ``healthy`` is what health says."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", " world", "."])
    name: str = "flaky"
    model: str = "flaky-model"
    n_ctx: int = 2048
    delay: float = 0.0
    healthy: bool = True
    fail: BackendError | None = None
    fail_after: int | None = None
    finish_reason: str = "stop"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(streaming=True, tokenize=True, abort=True))
    requests: list[GenerationRequest] = field(default_factory=list)
    completed: int = 0
    closed_early: int = 0
    aborted: list[str | None] = field(default_factory=list)
    closed: bool = False
    running: int = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Replay ``pieces``; record the request and how the stream ended."""
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        self.running += 1
        done = False
        try:
            for index, piece in enumerate(self.pieces):
                if self.fail_after is not None and index == self.fail_after:
                    raise BackendProtocolError("failure mid-reply", backend=self.name)
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield Chunk(text=piece)
            done = True
            self.completed += 1
            yield Chunk(
                done=True,
                timings=Timings(
                    prompt_tokens=len(request.prompt.split()),
                    generated_tokens=len(self.pieces),
                    finish_reason=self.finish_reason,
                ),
            )
        finally:
            self.running -= 1
            if not done:
                self.closed_early += 1

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """One token a word."""
        return [len(text.split()) for text in texts]

    async def context_size(self) -> int:
        """The configured context size."""
        return self.n_ctx

    async def health(self) -> Health:
        """Whatever ``healthy`` says."""
        if not self.healthy:
            return Health(ok=False, detail="flaky: down")
        return Health(ok=True, detail="ready", model=self.model, n_ctx=self.n_ctx)

    async def model_info(self) -> ModelInfo:
        """The configured model."""
        return ModelInfo(name=self.model, n_ctx=self.n_ctx)

    async def load_model(self, name: str) -> ModelInfo:
        """It cannot switch models."""
        raise UnsupportedOperation("this backend cannot load models", backend=self.name)

    async def abort(self, conversation: str | None = None) -> None:
        """Record the abort."""
        self.aborted.append(conversation)

    async def aclose(self) -> None:
        """Record the close."""
        self.closed = True
