"""Events between the processes that share one store: what one process changed, the others hear.

``store.events.publish("characters_changed")`` tells every other process; handlers added
with ``subscribe`` run in each of them (never in the process that published). With SQLite
there is one process, so :class:`LocalEvents` tells no one. With PostgreSQL,
:class:`PostgresEvents` sends ``pg_notify`` on the ``troupe_events`` channel and listens on
a dedicated connection (a pooled one could be handed back and lose its ``LISTEN``). When the
server goes away the listener logs it and reconnects by itself; once back it delivers a
``resync`` event, since notifications sent meanwhile are lost, so caches are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StoreEvent", "StoreEvents", "LocalEvents", "PostgresEvents", "CHANNEL", "RESYNC"]

log = logging.getLogger(__name__)

#: the PostgreSQL notification channel
CHANNEL = "troupe_events"
#: delivered after the listener reconnected: events may have been missed, drop what is cached
RESYNC = "resync"
_LIMIT = 7900  # bytes: PostgreSQL refuses a notification payload of 8000 or more

Handler = Callable[["StoreEvent"], Awaitable[None]]


@dataclass(frozen=True)
class StoreEvent:
    """One change another process made: its kind and plain values."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class StoreEvents(ABC):
    """Publish to and hear from the other processes sharing the store."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._running: set[asyncio.Task[None]] = set()

    def subscribe(self, handler: Handler) -> None:
        """Run ``handler`` for each event another process publishes."""
        self._handlers.append(handler)

    @property
    def listening(self) -> bool:
        """Whether events from other processes arrive now."""
        return True

    @abstractmethod
    async def publish(self, kind: str, **data: Any) -> None:
        """Tell the other processes (never raises: a lost event only delays what they see)."""

    async def start(self) -> None:
        """Start listening (nothing to do where there are no other processes)."""

    async def close(self) -> None:
        """Stop listening."""
        for task in list(self._running):
            task.cancel()

    def deliver(self, event: StoreEvent) -> None:
        """Run every handler for ``event`` in the background (one failing is logged, not raised)."""
        for handler in self._handlers:
            task = asyncio.get_running_loop().create_task(self._handle(handler, event))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _handle(self, handler: Handler, event: StoreEvent) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("Could not apply %s from another process", event.kind)


class LocalEvents(StoreEvents):
    """One process (SQLite): nobody else to tell."""

    async def publish(self, kind: str, **data: Any) -> None:
        return None


class PostgresEvents(StoreEvents):
    """LISTEN/NOTIFY on ``troupe_events``; see the module docstring."""

    def __init__(self, dsn: str, url: str, *, retry: float = 0.5, retry_max: float = 5.0,
                 keepalive: float = 5.0) -> None:
        super().__init__()
        self._dsn = dsn
        self.url = url  # redacted, for logs
        self.origin = uuid.uuid4().hex  # this process: its own notifications are skipped
        self._retry, self._retry_max, self._keepalive = retry, retry_max, keepalive
        self._sender: Any = None  # asyncpg.Connection for NOTIFY, opened on first use
        self._listening: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self.connected.is_set()

    async def start(self) -> None:
        if self._listening is None:
            self._listening = asyncio.create_task(self._listen_forever(), name="troupe-store-events")

    async def close(self) -> None:
        await super().close()
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
            self._listening = None
        if self._sender is not None:
            sender, self._sender = self._sender, None
            sender.terminate()

    async def publish(self, kind: str, **data: Any) -> None:
        import asyncpg

        payload = json.dumps({"origin": self.origin, "kind": kind, "data": data})
        if len(payload.encode()) > _LIMIT:
            log.warning("Event %s is too large to send to other processes; dropped", kind)
            return
        for attempt in (1, 2):  # a sender the server dropped is replaced once
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self._dsn, timeout=5.0)
                await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if self._sender is not None:
                    self._sender.terminate()
                    self._sender = None
                if attempt == 2:
                    log.warning("Could not tell the other processes (%s) about %s: %s", self.url, kind,
                                type(exc).__name__)

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin, kind, data = message["origin"], message["kind"], message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            log.warning("Ignored a malformed event on %s", CHANNEL)
            return
        if origin != self.origin:
            self.deliver(StoreEvent(str(kind), dict(data)))

    async def _listen_forever(self) -> None:
        import asyncpg

        delay, lost_before = self._retry, False
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5.0)
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                if lost_before:
                    log.warning("Listening to other processes again (%s); dropping cached state", self.url)
                    self.deliver(StoreEvent(RESYNC))
                delay, lost_before = self._retry, False
                while True:  # a dead connection shows within one keepalive
                    await asyncio.sleep(self._keepalive)
                    await asyncio.wait_for(conn.execute("SELECT 1"), self._keepalive)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self.connected.clear()
                if not lost_before:
                    log.error("Lost the events connection to the store %s (%s); other processes' changes "
                              "arrive once it is back; reconnecting", self.url, type(exc).__name__)
                lost_before = True
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
