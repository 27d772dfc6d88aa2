"""One generation at a time per channel, a bounded queue behind it, per-user cooldowns."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["ChannelScheduler", "Slot", "Cooldowns"]


@dataclass
class _Channel:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: int = 0
    running: asyncio.Task[object] | None = None


class Slot:
    """A reserved place in a channel's line; ``async with`` waits for the turn."""

    def __init__(self, scheduler: ChannelScheduler, channel_id: int) -> None:
        self._scheduler = scheduler
        self._channel_id = channel_id
        self._state = scheduler._channels[channel_id]
        self._released = False

    async def __aenter__(self) -> Slot:
        try:
            await self._state.lock.acquire()
        except BaseException:
            self.release()
            raise
        self._state.running = asyncio.current_task()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._state.running = None
        self._state.lock.release()
        self.release()

    def release(self) -> None:
        """Give the place back (idempotent)."""
        if not self._released:
            self._released = True
            self._scheduler._leave(self._channel_id)


class ChannelScheduler:
    """Serialises work per channel; at most ``queue_size`` wait behind the running one."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._channels: dict[int, _Channel] = {}

    def reserve(self, channel_id: int) -> Slot | None:
        """A place in the channel's line, or None when the line is full (say "busy")."""
        state = self._channels.setdefault(channel_id, _Channel())
        if state.pending >= 1 + self.queue_size:
            return None
        state.pending += 1
        return Slot(self, channel_id)

    def _leave(self, channel_id: int) -> None:
        state = self._channels.get(channel_id)
        if state is None:
            return
        state.pending -= 1
        if state.pending <= 0 and not state.lock.locked():
            del self._channels[channel_id]

    def waiting(self) -> int:
        """Replies waiting for their channel's turn, over all channels (the queue depth)."""
        return sum(max(0, state.pending - (1 if state.lock.locked() else 0)) for state in self._channels.values())

    def busy(self, channel_id: int) -> bool:
        """Whether something runs in the channel now."""
        state = self._channels.get(channel_id)
        return bool(state and state.running and not state.running.done())

    def cancel(self, channel_id: int) -> bool:
        """Cancel the channel's running generation; True if there was one."""
        state = self._channels.get(channel_id)
        if state is None or state.running is None or state.running.done():
            return False
        state.running.cancel()
        return True


class Cooldowns:
    """Per-user cooldown: ``hit`` returns 0 and records, or the seconds still to wait.

    Only users still cooling down are remembered: each hit forgets, oldest first, the
    users whose cooldown is over, so memory follows the users active within the last
    ``seconds`` and no hit does more than its share of the forgetting."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: OrderedDict[int, float] = OrderedDict()  # oldest use first

    def hit(self, user_id: int) -> float:
        """Record a use by ``user_id`` if allowed; else how long until it is."""
        now = self._clock()
        while self._last:
            oldest, at = next(iter(self._last.items()))
            if now - at < self.seconds:
                break
            del self._last[oldest]
        last = self._last.get(user_id)
        if last is not None:
            return self.seconds - (now - last)
        self._last[user_id] = now
        return 0.0

    def __len__(self) -> int:
        """How many users are cooling down."""
        return len(self._last)
