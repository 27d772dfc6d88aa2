"""``scene.director: model``: the model picks the next speaker from the shared transcript."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.backends.base import GenerationRequest
from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards import CharacterLibrary
from bot.chat import ChatService
from bot.config import parse_config
from bot.director import member_named
from bot.prompt.types import Turn
from bot.testing import ScriptedBackend

SHOWN = [("Aria", "Aria"), ("Captain Brass", "Captain Brass"), ("Professor Quill", "Professor Quill")]


def test_a_member_is_known_by_the_name_the_model_wrote() -> None:
    assert member_named("Captain Brass]: Aye", SHOWN) == "Captain Brass"
    assert member_named(" professor quill]", SHOWN) == "Professor Quill"


def test_a_name_cut_off_still_counts_when_only_one_member_has_it() -> None:
    assert member_named("Capt", SHOWN) == "Captain Brass"
    assert member_named("Ar", SHOWN) is None  # too short to tell


def test_a_persons_name_is_nobody_of_the_cast() -> None:
    assert member_named("Alice]:", SHOWN) is None
    assert member_named("Captain Brassica]", SHOWN) is None
    assert member_named("", SHOWN) is None


@pytest.fixture
def library(characters_dir: Path) -> CharacterLibrary:
    library = CharacterLibrary(characters_dir)
    library.load()
    return library


TURNS = [
    Turn("Alice", "Professor, what do you make of this old map?", "1"),
    Turn("Professor Quill", "Fascinating! The ink is at least a century old.", "2", role="character"),
    Turn("Alice", "And you, Captain Brass, could your airship fly there?", "3"),
]


async def test_the_model_reads_only_a_bracket_and_a_name_beyond_the_history(library: CharacterLibrary) -> None:
    def director(request: GenerationRequest) -> list[str]:
        return ["Captain", " Brass]", ": Aye"]

    backend = ScriptedBackend([director, ["Aye."]])
    service = ChatService(backend, parse_config({"scene": {"director": "model"}}))
    cast = [library.get(n) for n in ("Aria", "Captain Brass", "Professor Quill")]
    picked = await service.pick_speaker(cast, TURNS, conversation="7")  # type: ignore[arg-type]
    reply = await service.reply(cast[1], TURNS, conversation="7", cast=cast)  # type: ignore[arg-type,list-item]
    await reply.collect()
    pick, answer = backend.requests
    assert picked == "Captain Brass"
    assert pick.prompt.endswith("could your airship fly there?\n[") and pick.sampling.temperature == 0.0
    assert answer.prompt.startswith(pick.prompt.removesuffix("["))  # the reply reuses all the pick read
    assert answer.prompt.endswith("[Captain Brass]:")


async def test_the_real_model_names_a_cast_member(embedded: LlamaCppBackend, library: CharacterLibrary) -> None:
    service = ChatService(embedded, parse_config({"backend": {"n_ctx": 2048}, "scene": {"director": "model"}}))
    cast = [library.get(n) for n in ("Aria", "Captain Brass")]
    turns = [
        Turn("Alice", "Aria, the captain looks hungry.", "1"),
        Turn("Aria", "Then she'll have the stew, like everyone.", "2", role="character"),
        Turn("Captain Brass", "Stew? On my airship we eat biscuits.", "3", role="character"),
        Turn("Aria", "Biscuits! Captain, you wound me.", "4", role="character"),
    ]
    picked = await service.pick_speaker(cast, turns, conversation="scene")  # type: ignore[arg-type]
    assert picked in ("Aria", "Captain Brass")


async def test_switching_speakers_costs_only_the_closing_tag_with_the_real_model(
    embedded: LlamaCppBackend, library: CharacterLibrary
) -> None:
    service = ChatService(embedded, parse_config({"prompt": {"max_reply_tokens": 8}}))
    cast = [library.get(n) for n in ("Aria", "Captain Brass")]
    turns = [Turn("Alice", "Evening, both of you. What's the news?", "1")]
    first = await service.reply(cast[0], turns, conversation="scene", cast=cast)  # type: ignore[arg-type]
    await first.collect()
    second = await service.reply(cast[1], turns, conversation="scene", cast=cast)  # type: ignore[arg-type]
    await second.collect()
    assert first.stats.timings and second.stats.timings
    assert first.stats.timings.prompt_evaluated == first.stats.timings.prompt_tokens > 300
    assert second.stats.timings.prompt_evaluated is not None and second.stats.timings.prompt_evaluated <= 8
