"""Memory: the messages the bot has seen, kept per channel for recall, and people's control of them.

Front ends tell it what they saw (:meth:`Memory.observe`), edited and deleted; the writes go
to the store in the background, in order, so a message costs the reply path no store write.
The ChatService asks it for the older messages a new one recalls (:meth:`Memory.recall`):
only what lies before the prompt window and after the channel's ``/reset`` fence, in
channels whose memory is on. ``forget-me`` and the ``keep_days`` pruning happen here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from bot.config import MemoryConfig
from bot.conversations import Conversation
from bot.errors import StoreError
from bot.memory.recall import needed
from bot.memory.words import query_terms
from bot.prompt.types import Turn
from bot.store import MemoryCount, Remembered, Store

__all__ = ["Memory", "DAY"]

log = logging.getLogger(__name__)

DAY = 86_400
_SEEN_KEPT = 20_000  # message ids known to be kept (and unchanged), so history reads write nothing
_PRUNE_EVERY = 3600.0  # seconds between background prunes


class Memory:
    """Indexes what the bot sees and recalls it; without a store it keeps and recalls nothing."""

    def __init__(self, store: Store | None, settings: Callable[[], MemoryConfig]) -> None:
        self._store = store
        self._settings = settings  # the live config section (a reload may change it)
        self._pending: list[Callable[[Store], Awaitable[object]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._seen: OrderedDict[int, str] = OrderedDict()  # message id -> text kept

    @property
    def settings(self) -> MemoryConfig:
        """The memory section of the live config."""
        return self._settings()

    def remembers(self, conversation: Conversation) -> bool:
        """Whether the conversation keeps and recalls messages (a channel, memory on)."""
        on = self.settings.enabled if conversation.memory is None else conversation.memory
        return self._store is not None and on and conversation.channel_id is not None

    # ------------------------------------------------------------------ what was seen

    def observe(self, conversation: Conversation, messages: Sequence[Remembered]) -> None:
        """Keep messages seen in the conversation (if it remembers); written in the background."""
        if not self.remembers(conversation):
            return
        fence = conversation.fence_id or 0
        fresh = [m for m in messages if m.message_id > fence and self._seen.get(m.message_id) != m.text]
        if not fresh:
            return
        for message in fresh:
            self._seen[message.message_id] = message.text
            self._seen.move_to_end(message.message_id)
        while len(self._seen) > _SEEN_KEPT:
            self._seen.popitem(last=False)
        self._queue(lambda store: store.remember(fresh))

    def edited(self, message_id: int, text: str) -> None:
        """A message was edited: its kept text follows (nothing if it is not kept)."""
        if self._store is None:
            return
        if message_id in self._seen:
            self._seen[message_id] = text
        self._queue(lambda store: store.edit_remembered(message_id, text))

    def deleted(self, message_ids: Sequence[int]) -> None:
        """Messages were deleted: they leave memory."""
        if self._store is None or not message_ids:
            return
        for message_id in message_ids:
            self._seen.pop(message_id, None)
        ids = list(message_ids)
        self._queue(lambda store: store.forget_messages(ids))

    async def settle(self) -> None:
        """Wait until every observed change is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def _queue(self, write: Callable[[Store], Awaitable[object]]) -> None:
        self._pending.append(write)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())

    async def _write_pending(self) -> None:
        assert self._store is not None
        while self._pending:
            write = self._pending.pop(0)
            try:
                await write(self._store)
            except StoreError as exc:  # memory is best effort: the conversation goes on without it
                log.warning("Memory write skipped: %s", exc)

    # ------------------------------------------------------------------ recall

    async def recall(
        self, conversation: Conversation, text: str, *, before_id: str | None, ignore: Sequence[str] = ()
    ) -> list[Turn]:
        """The kept messages ``text`` recalls, oldest first: from before the message
        ``before_id`` (the window's first turn) and after the fence, relevant ones only.
        Empty when the conversation does not remember or nothing is relevant."""
        settings = self.settings
        if not self.remembers(conversation) or not settings.recall_messages:
            return []
        if not before_id or not before_id.isdigit():
            return []
        terms = query_terms(text, ignore=ignore)
        if not terms:
            return []
        assert self._store is not None and conversation.channel_id is not None
        await self.settle()  # a deletion or edit seen before this reply counts in its recall
        try:
            hits = await self._store.recall(
                conversation.channel_id, terms, at_least=needed(terms), after_id=conversation.fence_id or 0,
                before_id=int(before_id), limit=settings.recall_messages,
            )
        except StoreError as exc:
            log.warning("Recall skipped in %s: %s", conversation.key, exc)
            return []
        hits.sort(key=lambda hit: hit.message_id)
        return [Turn(hit.speaker, hit.text, str(hit.message_id)) for hit in hits]

    # ------------------------------------------------------------------ people in control

    async def count(self, conversation: Conversation) -> MemoryCount:
        """How much of the conversation is kept."""
        if self._store is None or conversation.channel_id is None:
            return MemoryCount(0)
        await self.settle()
        return await self._store.memory_count(conversation.channel_id)

    async def forget_author(self, author_id: int) -> dict[int, int]:
        """Everything kept from ``author_id``'s messages, in every channel, goes; returns how many
        per channel (whose summaries may speak of them: the caller clears those)."""
        if self._store is None:
            return {}
        await self.settle()
        self._seen.clear()
        return await self._store.forget_author(author_id)

    async def prune(self, now: float | None = None) -> int:
        """Drop messages older than ``keep_days``; returns how many."""
        if self._store is None:
            return 0
        cutoff = int((time.time() if now is None else now) - self.settings.keep_days * DAY)
        return await self._store.prune_memory(cutoff)

    async def prune_forever(self, interval: float = _PRUNE_EVERY) -> None:
        """Prune now and then every ``interval`` seconds (a background task)."""
        while True:
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("Memory: %d messages older than %d days forgotten",
                             pruned, self.settings.keep_days)
            except StoreError as exc:
                log.warning("Memory prune skipped: %s", exc)
            await asyncio.sleep(interval)
