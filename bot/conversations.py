"""The one owner of every conversation's state.

A conversation is a Discord channel or thread (keyed by its id as a string), the
console (``"console"``) or a client of ``python -m bot serve`` (``"serve:..."``).
Its state (the character chosen for it, a scene's cast, the ``/reset`` fence, the
first message of the prompt window, the author's note, the wake-word switch, who
spoke last, the memory switch and the running summary) is read and changed here and
nowhere else. Channel conversations are persisted in the store
(write-through; a bounded cache in front of it), others live in memory only.

Front ends (cogs, console, ``serve``, benchmarks) and the ChatService ask this
service; nobody else touches the store's channel rows or keeps copies of them.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot.cards import CharacterLibrary
from bot.cards.model import Character
from bot.errors import SceneError, StoreError
from bot.store import ChannelState, Store

__all__ = ["Conversation", "Conversations"]

log = logging.getLogger(__name__)

_CACHED = 4096  # conversations kept in memory (the store has them all)


@dataclass(frozen=True)
class Conversation:
    """One conversation's state (immutable: changes go through :class:`Conversations`)."""

    key: str
    character: str | None = None  # chosen for this conversation; None: the server's or the default
    fence_id: int | None = None  # messages up to this id are forgotten (/reset)
    anchor: str | None = None  # id of the first message of the prompt window
    note: str | None = None  # the author's note to the character
    wake_words: bool | None = None  # None: the config's default
    cast: tuple[str, ...] = ()  # a scene's members (card names), in order; empty: the one character
    memory: bool | None = None  # memory (recall, summary) here; None: the config's default
    summary: str | None = None  # the running summary of what scrolled out of the window

    @property
    def channel_id(self) -> int | None:
        """The Discord channel id, for conversations that are channels."""
        return int(self.key) if self.key.isdigit() else None

    @classmethod
    def from_store(cls, state: ChannelState) -> Conversation:
        """The conversation a stored channel row describes."""
        return cls(
            key=str(state.channel_id), character=state.character, fence_id=state.fence_id,
            anchor=state.anchor_id, note=state.note, wake_words=state.wake_words, cast=state.cast or (),
            memory=state.memory, summary=state.summary,
        )


class Conversations:
    """Reads, changes and persists conversations; picks each one's character.

    Without a store (console, ``serve``, benchmarks) conversations live in memory;
    without a library it keeps state only and picks no character."""

    def __init__(self, library: CharacterLibrary | None, store: Store | None = None, *,
                 default_character: str | None = None, capacity: int = _CACHED) -> None:
        self.library = library
        self.default_character = default_character
        self._store = store
        self._cache: OrderedDict[str, Conversation] = OrderedDict()
        self._servers: OrderedDict[int, str | None] = OrderedDict()  # each server's default character
        self._capacity = capacity
        self._spoken: OrderedDict[str, Counter[str]] = OrderedDict()  # who spoke, since the start (memory)
        self._last_speaker: dict[str, str] = {}
        #: told each change a person made (character, reset, note, wake words; a server's
        #: character), so other processes sharing the store can drop their cached copy
        self.announce: Callable[[str, dict[str, object]], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ reading

    async def get(self, key: str) -> Conversation:
        """The conversation's state (defaults when it was never changed)."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        conversation = Conversation(key)
        if self._store is not None and key.isdigit():
            conversation = Conversation.from_store(await self._store.channel(int(key)))
        return self._keep(conversation)

    async def character(self, key: str, guild_id: int | None = None) -> Character | None:
        """Who speaks in the conversation: its own choice, else its server's, else the default."""
        conversation = await self.get(key)
        server = await self._server_character(guild_id) if guild_id else None
        if self.library is None:
            return None
        for name in (conversation.character, server):
            if name and (found := self.library.get(name)) is not None:
                return found
        return self.library.default(self.default_character)

    async def cast(self, key: str, guild_id: int | None = None) -> tuple[Character, ...]:
        """Who may speak in the conversation, in order: its scene's members still in the
        library, else its one character (empty only without any character)."""
        conversation = await self.get(key)
        if self.library is not None and conversation.cast:
            members = tuple(c for name in conversation.cast if (c := self.library.get(name)) is not None)
            if members:
                return members
        one = await self.character(key, guild_id)
        return (one,) if one is not None else ()

    def last_speaker(self, key: str) -> str | None:
        """The member who spoke last in the conversation since the bot started (its card name)."""
        return self._last_speaker.get(key)

    def spoken(self, key: str) -> dict[str, int]:
        """How many replies each member gave in the conversation since the bot started."""
        return dict(self._spoken.get(key, {}))

    async def active(self, limit: int) -> list[Conversation]:
        """The channels the character last spoke in, most recent first (for pre-warming)."""
        if self._store is None:
            return []
        return [self._keep(Conversation.from_store(state)) for state in await self._store.recent_channels(limit)]

    # ------------------------------------------------------------------ changing

    async def set_character(self, key: str, name: str | None) -> None:
        """Choose the conversation's character (None: the server's or the default): a scene
        becomes a cast of that one; the window starts over."""
        async def write(store: Store, channel: int) -> None:
            if (await self.get(key)).cast:
                await store.set_cast(channel, None)
            await store.set_channel_character(channel, name)

        await self._persist(key, write)
        await self._change(key, character=name, cast=(), anchor=None)
        await self._announce("conversation_changed", key=key)

    async def set_cast(self, key: str, names: Sequence[str]) -> None:
        """Make ``names`` (card names, in order) the conversation's scene; the window starts over
        (the shared prompt's head changes once)."""
        cast = tuple(dict.fromkeys(names))
        async def write(store: Store, channel: int) -> None:
            await store.set_cast(channel, cast or None)
            await store.set_anchor(channel, None)  # the window starts over with the new head

        await self._persist(key, write)
        await self._change(key, cast=cast, anchor=None)
        await self._announce("conversation_changed", key=key)
        log.info("Conversation %s: the cast is now %s", key, ", ".join(cast) or "the one character")

    async def add_member(self, key: str, name: str, *, guild_id: int | None = None, most: int) -> tuple[str, ...]:
        """Add a character (card name) to the scene; the one character speaking until now
        becomes its first member. Returns the new cast; :class:`SceneError` when it is full
        or already there."""
        current = tuple(c.name for c in await self.cast(key, guild_id))
        if name in current:
            raise SceneError(f"{name} is already in the scene.")
        if len(current) >= most:
            raise SceneError(f"The scene is full ({most} characters at most; scene.max_cast).")
        cast = (*current, name)
        await self.set_cast(key, cast)
        return cast

    async def remove_member(self, key: str, name: str, *, guild_id: int | None = None) -> tuple[str, ...]:
        """Take a character out of the scene; the last member cannot leave (use /character set)."""
        current = tuple(c.name for c in await self.cast(key, guild_id))
        if name not in current:
            raise SceneError(f"{name} is not in the scene.")
        if len(current) == 1:
            raise SceneError(f"{name} is the only one left; choose another with /character set.")
        cast = tuple(n for n in current if n != name)
        await self.set_cast(key, cast)
        return cast

    def spoke(self, key: str, name: str) -> None:
        """Record that member ``name`` just spoke in the conversation (for the director and /stats)."""
        self._last_speaker[key] = name
        counts = self._spoken.setdefault(key, Counter())
        counts[name] += 1
        self._spoken.move_to_end(key)
        while len(self._spoken) > self._capacity:
            gone, _ = self._spoken.popitem(last=False)
            self._last_speaker.pop(gone, None)

    async def set_server_character(self, guild_id: int, name: str | None) -> None:
        """Choose a server's default character; its channels' windows start over."""
        if self._store is not None:
            await self._store.set_guild_character(guild_id, name)
        self._remember_server(guild_id, name)
        await self._announce("server_changed", guild_id=guild_id)

    async def reset(self, key: str, fence_id: int) -> None:
        """Forget the conversation up to and including message ``fence_id``: its memory
        (kept messages, summary) starts over too."""
        await self._persist(key, lambda store, channel: store.set_fence(channel, fence_id))
        await self._persist(key, lambda store, channel: store.set_summary(channel, None))
        await self._persist(key, lambda store, channel: store.forget_channel_memory(channel, upto=fence_id))
        await self._change(key, fence_id=fence_id, anchor=None, summary=None)
        await self._announce("conversation_changed", key=key)

    async def set_memory(self, key: str, enabled: bool | None) -> None:
        """Turn memory on or off (None: the config's default). Off also forgets what the
        channel's memory held (kept messages and summary)."""
        await self._persist(key, lambda store, channel: store.set_memory(channel, enabled))
        if enabled is False:
            await self._persist(key, lambda store, channel: store.set_summary(channel, None))
            await self._persist(key, lambda store, channel: store.forget_channel_memory(channel))
            await self._change(key, memory=enabled, summary=None)
        else:
            await self._change(key, memory=enabled)
        await self._announce("conversation_changed", key=key)

    async def set_summary(self, key: str, summary: str | None) -> None:
        """Set (or with None clear) the running summary of what scrolled out of the window."""
        await self._persist(key, lambda store, channel: store.set_summary(channel, summary or None))
        await self._change(key, summary=summary or None)
        await self._announce("conversation_changed", key=key)

    async def set_note(self, key: str, note: str | None) -> None:
        """Set (or with None clear) the author's note."""
        await self._persist(key, lambda store, channel: store.set_note(channel, note))
        await self._change(key, note=note)
        await self._announce("conversation_changed", key=key)

    async def set_wake_words(self, key: str, enabled: bool | None) -> None:
        """Turn wake words on or off (None: the config's default)."""
        await self._persist(key, lambda store, channel: store.set_wake_words(channel, enabled))
        await self._change(key, wake_words=enabled)
        await self._announce("conversation_changed", key=key)

    async def window_moved(self, key: str, anchor: str | None, *, replied: bool) -> None:
        """Record where the prompt window starts. A reply (``replied``) also marks the
        channel active; the store is written only for replies and real moves."""
        before = await self.get(key)
        if anchor is None or (anchor == before.anchor and not replied):
            return
        await self._change(key, anchor=anchor)
        try:  # a hint for the next start (and which channels are active): a reply goes on without it
            await self._persist(key, lambda store, channel: store.set_anchor(channel, anchor))
        except StoreError as exc:
            log.warning("Could not save the window of conversation %s (the reply goes on): %s", key, exc)

    def forget_windows(self) -> None:
        """The model changed: every window is rebuilt from scratch on its next reply."""
        for key, conversation in list(self._cache.items()):
            self._cache[key] = replace(conversation, anchor=None)

    async def start_over(self, key: str) -> None:
        """Forget an in-memory conversation's window (the console's character switch)."""
        await self._change(key, anchor=None)

    def heard(self, kind: str, data: Mapping[str, object]) -> bool:
        """Apply a change another process announced (its cached copy is dropped, the store has
        the change); False for an event that is not about conversations."""
        if kind == "conversation_changed":
            self.forget(str(data["key"]))
        elif kind == "server_changed":
            self.forget_server(int(str(data["guild_id"])))
        else:
            return False
        return True

    def forget(self, key: str) -> None:
        """Drop the cached copy of a conversation another process changed (read again from the store)."""
        self._cache.pop(key, None)

    def forget_server(self, guild_id: int) -> None:
        """Drop the cached character of a server another process changed."""
        self._servers.pop(guild_id, None)

    def forget_all(self) -> None:
        """Drop every cached conversation and server (changes elsewhere may have been missed)."""
        self._cache.clear()
        self._servers.clear()

    # ------------------------------------------------------------------ plumbing

    async def _announce(self, kind: str, **data: object) -> None:
        if self.announce is not None and self._store is not None:
            await self.announce(kind, data)

    async def _server_character(self, guild_id: int) -> str | None:
        if guild_id in self._servers:
            self._servers.move_to_end(guild_id)
            return self._servers[guild_id]
        name = await self._store.guild_character(guild_id) if self._store is not None else None
        self._remember_server(guild_id, name)
        return name

    def _remember_server(self, guild_id: int, name: str | None) -> None:
        self._servers[guild_id] = name
        self._servers.move_to_end(guild_id)
        while len(self._servers) > self._capacity:
            self._servers.popitem(last=False)

    async def _persist(self, key: str, write: Callable[[Store, int], Awaitable[object]]) -> None:
        """Write a channel conversation's change to the store first (a failed write changes nothing)."""
        if self._store is not None and key.isdigit():
            await write(self._store, int(key))

    async def _change(self, key: str, **values: object) -> None:
        self._keep(replace(await self.get(key), **values))  # type: ignore[arg-type]

    def _keep(self, conversation: Conversation) -> Conversation:
        self._cache[conversation.key] = conversation
        self._cache.move_to_end(conversation.key)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return conversation

