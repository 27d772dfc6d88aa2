"""Several backends as one: health-checked, least-busy routing, fail-over.

Members are checked when the pool is first used and then every
``health_interval`` seconds in the background. A request goes to the member that
served its conversation last (its KV cache holds the conversation) while that
member is healthy, else to the least busy healthy member. A member that fails
before any text reached the caller is marked down and the request is retried on
another; once text has been yielded the error is raised instead, so no reply is
ever given twice. A member marked down comes back when a health check passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from bot.backends.base import (
    Backend,
    Capabilities,
    Chunk,
    ConversationStateBackend,
    GenerationRequest,
    Health,
    MemberState,
    ModelInfo,
)
from bot.backends.retry import is_retryable
from bot.errors import BackendError, BackendUnavailable, UnsupportedOperation

__all__ = ["PoolBackend"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(eq=False)
class _Member:
    backend: Backend
    healthy: bool | None = None  # None until first checked
    busy: int = 0
    served: int = 0
    failures: int = 0
    last_error: str = ""
    last_used: float = 0.0
    checked_at: float | None = None
    model: str | None = None
    n_ctx: int | None = None

    @property
    def state(self) -> str:
        return {True: "up", False: "down", None: "unknown"}[self.healthy]


class PoolBackend:
    """A pool of backends behind the one protocol; see the module docstring."""

    kind = "pool"

    def __init__(
        self,
        members: Sequence[Backend],
        *,
        health_interval: float = 10.0,
        health_timeout: float | None = None,
    ) -> None:
        if not members:
            raise ValueError("a pool needs at least one member")
        self.members: list[Backend] = list(members)
        self.health_interval = health_interval
        self.health_timeout = health_timeout if health_timeout is not None else min(health_interval, 10.0)
        self.name = f"pool of {len(self.members)}"
        self.capabilities = Capabilities(
            streaming=True,
            tokenize=any(m.capabilities.tokenize for m in self.members),
            abort=True,
            model_info=True,
            model_load=any(m.capabilities.model_load for m in self.members),
        )
        self._members = [_Member(backend) for backend in self.members]
        self._sticky: dict[str, _Member] = {}
        self._running: dict[str, _Member] = {}
        self._first_check: asyncio.Future[None] | None = None
        self._checker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ health

    async def _ensure_started(self) -> None:
        """First use: check every member once, then keep checking in the background."""
        if self._first_check is None:
            self._first_check = asyncio.ensure_future(self._start())
        await asyncio.shield(self._first_check)

    async def _start(self) -> None:
        await self._check_all()
        self._checker = asyncio.create_task(self._check_forever(), name="troupe-pool-health")

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                await self._check_all()
            except Exception:  # the checker must outlive any one bad check
                log.exception("pool: health check failed")

    async def _check_all(self) -> None:
        await asyncio.gather(*(self._check(member) for member in self._members))

    async def _check(self, member: _Member) -> None:
        try:
            health = await asyncio.wait_for(member.backend.health(), self.health_timeout)
        except asyncio.TimeoutError:
            health = Health(ok=False, detail=f"no health answer within {self.health_timeout:g} s")
        was = member.healthy
        member.healthy = health.ok
        member.checked_at = time.monotonic()
        if health.ok:
            member.model, member.n_ctx = health.model, health.n_ctx
            if was is False:
                log.info("pool: %s is back up", member.backend.name)
        else:
            member.last_error = health.detail
            if was is not False:
                log.warning("pool: %s is down: %s", member.backend.name, health.detail)

    def _mark_down(self, member: _Member, exc: BackendError) -> None:
        member.healthy = False
        member.failures += 1
        member.last_error = str(exc)

    def member_states(self) -> list[MemberState]:
        """Each member's state, for ``/stats``."""
        now = time.monotonic()
        return [
            {
                "name": m.backend.name,
                "state": m.state,
                "busy": m.busy,
                "served": m.served,
                "failures": m.failures,
                "last_error": m.last_error,
                "model": m.model,
                "n_ctx": m.n_ctx,
                "checked_seconds_ago": None if m.checked_at is None else round(now - m.checked_at, 1),
            }
            for m in self._members
        ]

    # ------------------------------------------------------------------ routing

    def _candidates(self, conversation: str | None) -> list[_Member]:
        """Members to try, best first: sticky, healthy by load, unchecked, and down ones last."""
        healthy = sorted((m for m in self._members if m.healthy), key=lambda m: (m.busy, m.last_used))
        unknown = [m for m in self._members if m.healthy is None]
        down = sorted((m for m in self._members if m.healthy is False), key=lambda m: m.checked_at or 0.0)
        ordered = healthy + unknown + down
        sticky = self._sticky.get(conversation) if conversation is not None else None
        if sticky is not None and sticky.healthy:
            ordered.remove(sticky)
            ordered.insert(0, sticky)
        return ordered

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream from the best member, failing over while no text has been yielded."""
        await self._ensure_started()
        last: BackendError | None = None
        for member in self._candidates(request.conversation):
            member.busy += 1
            member.last_used = time.monotonic()
            if request.conversation is not None:
                self._running[request.conversation] = member
            sent_text = False
            try:
                async with aclosing(member.backend.stream(request)) as chunks:
                    async for chunk in chunks:
                        if chunk.text and not sent_text:
                            sent_text = True
                            # this member now holds the conversation (and its KV cache), even if
                            # the caller stops reading early, as it does at a stop string
                            member.served += 1
                            if request.conversation is not None:
                                self._sticky[request.conversation] = member
                        yield chunk
                        if chunk.done:
                            break
                return
            except BackendError as exc:
                if not is_retryable(exc):
                    raise
                self._mark_down(member, exc)
                if sent_text:
                    log.warning("pool: %s failed mid-reply: %s", member.backend.name, exc)
                    raise
                log.warning(
                    "pool: %s failed before replying (%s); trying another member", member.backend.name, exc
                )
                last = exc
            finally:
                member.busy -= 1
                if request.conversation is not None and self._running.get(request.conversation) is member:
                    del self._running[request.conversation]
        raise BackendUnavailable(
            f"no pool member could answer (last error: {last})", backend=self.name
        ) from last

    async def _first_working(self, call: Callable[[Backend], Awaitable[_T]]) -> _T:
        """``call(member)`` on the best member, failing over on retryable errors."""
        await self._ensure_started()
        last: BackendError | None = None
        for member in self._candidates(None):
            try:
                return await call(member.backend)
            except BackendError as exc:
                if not is_retryable(exc):
                    raise
                self._mark_down(member, exc)
                last = exc
        raise BackendUnavailable(
            f"no pool member could answer (last error: {last})", backend=self.name
        ) from last

    # ------------------------------------------------------------------ the rest of the protocol

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Counts from a healthy member (one with a tokenizer when there is one)."""
        await self._ensure_started()
        tokenizers = [m for m in self._candidates(None) if m.backend.capabilities.tokenize and m.healthy]
        if tokenizers:
            try:
                return await tokenizers[0].backend.count_tokens(texts)
            except BackendError as exc:
                if not is_retryable(exc):
                    raise
                self._mark_down(tokenizers[0], exc)
        return list(await self._first_working(lambda backend: backend.count_tokens(texts)))

    async def context_size(self) -> int:
        """The smallest context among healthy members (a prompt must fit wherever it fails over to)."""
        await self._ensure_started()
        known = [m.n_ctx for m in self._members if m.healthy and m.n_ctx]
        if known:
            return min(known)
        return await self._first_working(lambda backend: backend.context_size())

    async def health(self) -> Health:
        """Healthy while any member is; the detail lists every member."""
        await self._ensure_started()
        up = [m for m in self._members if m.healthy]
        parts = []
        for m in self._members:
            reason = f" ({m.last_error})" if m.healthy is False and m.last_error else ""
            parts.append(f"{m.backend.name}: {m.state}{reason}")
        detail = f"{len(up)}/{len(self._members)} members up; " + "; ".join(parts)
        if not up:
            return Health(ok=False, detail=detail)
        return Health(ok=True, detail=detail, model=up[0].model, n_ctx=await self.context_size())

    async def model_info(self) -> ModelInfo:
        """The model of the best member, with every member's state in ``details``."""
        info = await self._first_working(lambda backend: backend.model_info())
        return ModelInfo(
            name=info.name,
            n_ctx=await self.context_size(),
            available=info.available,
            details={**info.details, "members": self.member_states()},
        )

    async def load_model(self, name: str) -> ModelInfo:
        """Load ``name`` on every member that can load models."""
        able = [m.backend for m in self._members if m.backend.capabilities.model_load]
        if not able:
            raise UnsupportedOperation("no pool member can load models", backend=self.name)
        results = await asyncio.gather(*(backend.load_model(name) for backend in able))
        return results[0]

    async def prewarm(
        self, conversation: str, text: str, *, special_tokens: Sequence[str] = (), only_if_idle: bool = False
    ) -> int:
        """Read ahead on the member that holds the conversation (its cache is the one the next
        reply will use); nothing when no healthy member holds it yet or that member cannot."""
        member = self._sticky.get(conversation)
        if member is None or not member.healthy or (only_if_idle and member.busy):
            return 0
        backend = member.backend
        if not isinstance(backend, ConversationStateBackend):
            return 0
        return await backend.prewarm(conversation, text, special_tokens=special_tokens, only_if_idle=only_if_idle)

    async def abort(self, conversation: str | None = None) -> None:
        """Stop ``conversation``'s running generation (or every member's)."""
        running = self._running.get(conversation) if conversation is not None else None
        targets = [running.backend] if running is not None else self.members
        await asyncio.gather(*(backend.abort(conversation) for backend in targets))

    async def aclose(self) -> None:
        """Stop the health checks and close every member."""
        for task in (self._first_check, self._checker):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._checker = None
        await asyncio.gather(*(backend.aclose() for backend in self.members))
