"""``python -m bot prompt``: play a transcript into a fresh conversation and show the next prompt.

A transcript file has one message per line, ``Name: text`` (lines starting with ``#`` and
blank lines are skipped). The character's own lines are its replies. The messages go in as
Discord delivers them: each is kept in memory, each of the character's lines is a reply
(its window may slide, and a slide is folded into the summary by the model, as while idle),
and the prompt of the next reply is printed with its parts marked; ``--message`` adds one
more message first, ``--reply`` also generates the reply. The conversation lives in a
temporary store that is deleted afterwards.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bot.backends.base import Backend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import Config
from bot.conversations import Conversations
from bot.errors import ConfigError
from bot.memory import Memory
from bot.prompt.parts import marked
from bot.prompt.types import Turn
from bot.store import Remembered, open_store
from bot.store.urls import sqlite_url

__all__ = ["parse_transcript", "replay"]

_LINE = re.compile(r"^(?P<name>[^:\n]{1,80}):\s?(?P<text>.*)$")
_CHANNEL = 1  # the replayed conversation's channel id
_FIRST_ID = 1_000_000  # the first message's id (ids only grow)


def parse_transcript(lines: Iterable[str], character: str, *, source: str = "transcript") -> list[Turn]:
    """Turns from ``Name: text`` lines (the character's name marks its own replies)."""
    turns = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(f"{source}:{number}: expected 'Name: text', got {line[:60]!r}")
        name = match.group("name").strip()
        role = "character" if name.casefold() == character.casefold() else "user"
        turns.append(Turn(character if role == "character" else name, match.group("text"),
                          str(_FIRST_ID + len(turns)), role))  # type: ignore[arg-type]
    return turns


async def replay(
    config: Config, backend: Backend, character: Character, turns: list[Turn], *, reply: bool
) -> str:
    """The marked prompt of the next reply after ``turns`` (and the reply, with ``reply``)."""
    window = min(200, 2 * config.prompt.history_messages)  # what Discord reads per reply
    with tempfile.TemporaryDirectory(prefix="troupe-prompt-") as folder:
        async with open_store(sqlite_url(Path(folder) / "replay.db")) as store:
            conversations = Conversations(None, store)
            memory = Memory(store, lambda: config.memory)
            service = ChatService(backend, config, conversations, memory)
            key = str(_CHANNEL)
            now = int(time.time())
            authors: dict[str, int] = {}
            for index, turn in enumerate(turns):
                author = authors.setdefault(turn.speaker, len(authors) + 1)
                seen = Remembered(int(turn.id or 0), _CHANNEL, author, turn.speaker, turn.text, now)
                memory.observe(await conversations.get(key), [seen])
                if turn.role == "character" and index:
                    read = turns[max(0, index - window): index]  # what Discord reads for this reply
                    await service.prompt_for(character, read, conversation=key)
                    if service.summaries.pending(key):
                        await service.summaries.fold(key)
            await memory.settle()
            shown = turns[-window:]
            if not reply:
                return marked(await service.prompt_for(character, shown, conversation=key))
            stream = await service.reply(character, shown, conversation=key)
            text = await stream.collect()
            return f"{marked(stream.prompt)}===== reply =====\n{text}\n"
