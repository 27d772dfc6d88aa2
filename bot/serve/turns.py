"""OpenAI chat messages as a character's conversation (pure: no I/O).

The rules, the same for every client:

- a ``user`` message is a turn spoken by its ``name`` field, else by ``user``; when one
  person speaks they are the prompt's ``{{user}}``, when several speak it is the config's
  ``prompt.user_name`` (as in a Discord channel);
- an ``assistant`` message is one of the character's own turns;
- a ``system`` message is an out-of-character system note at its place in the
  conversation (``[System]: ...``, as ``!!text`` in the console chat); the card is
  Troupe's, so a client's own system prompt is only a note;
- a trailing ``assistant`` message is not a turn but the start of the reply: the
  character continues it (a client's "continue"), and only the continuation comes back;
- messages with blank content are left out.

Each turn gets an id derived from its role, speaker and text (and how many identical
messages came before it), so the same history sent again gives the same ids and the
window's anchor holds across requests, even when a client drops its oldest messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.prompt.types import Turn

__all__ = ["DEFAULT_SPEAKER", "SYSTEM_SPEAKER", "Conversation", "messages_to_conversation"]

#: who speaks a user message without a ``name``
DEFAULT_SPEAKER = "user"
SYSTEM_SPEAKER = "System"


@dataclass(frozen=True)
class Conversation:
    """What ChatService.reply needs from a request's messages."""

    turns: tuple[Turn, ...]
    #: the prompt's ``{{user}}``: the one person speaking; None (the config's ``prompt.user_name``,
    #: as in a Discord channel) when several speak, so the card's prefix stays the same
    user_name: str | None = None
    #: the start of the character's reply, to be continued
    prefill: str = ""


def messages_to_conversation(messages: Sequence[dict[str, Any]], character_name: str) -> Conversation:
    """The conversation the (validated) ``messages`` describe, for the named character."""
    prefill = ""
    body = list(messages)
    if body and body[-1].get("role") == "assistant" and str(body[-1].get("content", "")).strip():
        prefill = str(body.pop().get("content", ""))
    turns: list[Turn] = []
    seen: dict[str, int] = {}
    speakers: set[str] = set()
    for message in body:
        role, text = message.get("role"), str(message.get("content", ""))
        if not text.strip():
            continue
        if role == "assistant":
            speaker, kind = character_name, "character"
        elif role == "system":
            speaker, kind = SYSTEM_SPEAKER, "system"
        else:
            name = message.get("name")
            speaker = name.strip() if isinstance(name, str) and name.strip() else DEFAULT_SPEAKER
            kind = "user"
            speakers.add(speaker)
        key = _digest(kind, speaker, text)
        seen[key] = seen.get(key, 0) + 1
        turns.append(Turn(speaker=speaker, text=text, id=f"{key}.{seen[key]}", role=kind))  # type: ignore[arg-type]
    user_name = next(iter(speakers)) if len(speakers) == 1 else None
    return Conversation(turns=tuple(turns), user_name=user_name, prefill=prefill)


def _digest(kind: str, speaker: str, text: str) -> str:
    return hashlib.blake2b(f"{kind}\0{speaker}\0{text}".encode(), digest_size=8).hexdigest()
