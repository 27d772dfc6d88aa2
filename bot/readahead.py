"""When to read a conversation ahead: once it has been quiet for a moment, never while it is replying.

The front end says a conversation has new talk (:meth:`ReadAhead.soon`) and how to
read it; after ``quiet`` seconds without more, and if no reply is running there,
the reading runs. A newer message restarts the wait; shutting down cancels it all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["ReadAhead"]

log = logging.getLogger(__name__)

#: seconds without a message before a conversation is read ahead: short, as a reply arriving meanwhile
#: stops the reading within a chunk (see LlamaCppBackend.prewarm), and a busy channel still gets read
QUIET_SECONDS = 0.5


class ReadAhead:
    """Debounced background reading, one pending job per conversation."""

    def __init__(self, *, busy: Callable[[Hashable], bool], quiet: float = QUIET_SECONDS) -> None:
        self._busy = busy  # whether a reply is running (or queued) in the conversation
        self._quiet = quiet
        self._pending: dict[Hashable, asyncio.Task[None]] = {}

    def soon(self, key: Hashable, read: Callable[[], Awaitable[int]]) -> None:
        """Run ``read`` once ``key`` has been quiet for a moment (a newer call restarts the wait)."""
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.cancel()
        self._pending[key] = asyncio.create_task(self._after_quiet(key, read))

    async def _after_quiet(self, key: Hashable, read: Callable[[], Awaitable[int]]) -> None:
        try:
            await asyncio.sleep(self._quiet)
            if not self._busy(key):
                await read()
        finally:
            if self._pending.get(key) is asyncio.current_task():
                del self._pending[key]

    def pending(self) -> int:
        """Conversations waiting to be read."""
        return len(self._pending)

    async def close(self) -> None:
        """Cancel every pending reading and wait for them to end."""
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
