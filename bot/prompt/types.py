"""Plain data that flows through prompt building: turns in, a prompt out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.backends.base import ChatMessage

__all__ = ["Turn", "Prompt"]

Role = Literal["user", "character", "system"]


@dataclass(frozen=True)
class Turn:
    """One message of the conversation, already stripped of Discord.

    ``role`` is ``"character"`` for the character's own past replies and
    ``"system"`` for out-of-character notes (``!!text`` in the console).
    ``id`` is the message's id as a string (for anchors and fences), if it has one.
    """

    speaker: str
    text: str
    id: str | None = None
    role: Role = "user"


@dataclass(frozen=True)
class Prompt:
    """A built prompt.

    ``prefix`` is the stable head (system prompt, card, examples): ``text`` always
    starts with it and it does not change between replies of one channel, so the
    backend's KV cache can be reused. ``first_turn_id`` is the id of the oldest turn
    kept (the window's anchor). ``messages`` is the same prompt in chat form.
    """

    text: str
    stops: tuple[str, ...]
    prefix: str = ""
    token_count: int = 0
    prefix_tokens: int = 0
    turns_kept: int = 0
    turns_dropped: int = 0
    examples_kept: int = 0
    examples_dropped: int = 0
    first_turn_id: str | None = None
    lore_entries: tuple[str, ...] = ()
    messages: tuple[ChatMessage, ...] = field(default_factory=tuple)
    #: where the volatile tail (notes, the open ``[Character]:``) begins: ``text[:history_end]``
    #: is what a backend can read ahead before the character is asked to speak
    history_end: int = 0
    #: the format's control tokens: the only strings a backend may parse as special tokens
    special_tokens: tuple[str, ...] = ()
    #: the stops worth sending to the backend (``stops`` all apply to the visible reply; a
    #: reasoning model's thinking may contain most of them, so it gets only its turn ends)
    backend_stops: tuple[str, ...] = ()
    #: the recalled lines given to the model (memory), empty when nothing was recalled
    recalled: str = ""
    #: the prompt's parts in order, as (name, start, end) offsets into ``text``: card, summary,
    #: history, recalled, history, note (the note part ends with the open reply)
    parts: tuple[tuple[str, int, int], ...] = ()
