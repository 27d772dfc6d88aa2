"""The console does scenes too: ``--cast``, ``/cast``, every character turn printed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from bot.backends.base import GenerationRequest
from bot.cards import CharacterLibrary
from bot.chat import ChatService
from bot.config import parse_config
from bot.console import ConsoleChat
from bot.testing import ScriptedBackend


def by_speaker(request: GenerationRequest) -> list[str]:
    speaker = request.prompt.rsplit("\n[", 1)[1].removesuffix("]:")
    return [f"{speaker} here."]


@pytest.fixture
def library(characters_dir: Path) -> CharacterLibrary:
    library = CharacterLibrary(characters_dir)
    library.load()
    return library


def console(library: CharacterLibrary, backend: ScriptedBackend, names: list[str], **scene: object) -> ConsoleChat:
    config = parse_config({"scene": {"director": "list", **scene}})
    cast = [library.get(n) for n in names]
    return ConsoleChat(ChatService(backend, config), library, cast[0], user_name="Bob",  # type: ignore[arg-type]
                       out=io.StringIO(), cast=cast)  # type: ignore[arg-type]


async def test_one_message_prints_every_character_turn_it_started(library: CharacterLibrary) -> None:
    chat = console(library, ScriptedBackend([by_speaker]), ["Aria", "Captain Brass", "Professor Quill"])
    printed = await chat.one_reply("Captain, what now?")
    assert printed.splitlines() == [
        "Captain Brass: Captain Brass here.", "Professor Quill: Professor Quill here.", "Aria: Aria here.",
    ]


async def test_chains_can_be_turned_off(library: CharacterLibrary) -> None:
    chat = console(library, ScriptedBackend([by_speaker]), ["Aria", "Captain Brass"], max_chain=0)
    assert await chat.one_reply("Aria?") == "Aria: Aria here."


async def test_cast_commands_at_the_prompt_change_the_scene(library: CharacterLibrary) -> None:
    backend = ScriptedBackend([by_speaker])
    chat = console(library, backend, ["Aria", "Captain Brass"], max_chain=0)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    for line in ("/cast add Professor Quill", "Quill?", "/cast remove Aria", "/cast list", "/quit"):
        lines.put_nowait(line)
    await chat.run(lines)
    out = chat.out.getvalue()  # type: ignore[attr-defined]
    assert "Cast: Aria, Captain Brass, Professor Quill" in out
    assert "Professor Quill: Professor Quill here." in out
    assert "Cast: Captain Brass, Professor Quill\n" in out
    assert backend.requests[0].prompt.endswith("[Bob]: Quill?\n[Professor Quill]:")
