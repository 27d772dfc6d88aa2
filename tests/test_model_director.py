"""``scene.director: model``: the model picks the next speaker from the shared transcript."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.choices import choice_grammar
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


class Unconstrained:
    """The embedded backend without its ``choose``: what the director reads from a backend that
    cannot constrain a continuation (a real adapter, every other call goes to the real model)."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "choose":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_the_grammar_allows_exactly_the_choices() -> None:
    assert choice_grammar(["Aria]", 'Captain "Brass"]', "Aria]"]) == 'root ::= "Aria]" | "Captain \\"Brass\\"]"'


async def test_a_backend_that_cannot_constrain_the_pick_says_so_once(
    library: CharacterLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedBackend([["Bob]"], ["Aria]"]])
    service = ChatService(backend, parse_config({"scene": {"director": "model"}}))
    cast = [library.get(n) for n in ("Aria", "Captain Brass")]
    with caplog.at_level(logging.INFO, logger="bot.chat"):
        first = await service.pick_speaker(cast, TURNS, conversation="7")  # type: ignore[arg-type]
        second = await service.pick_speaker(cast, TURNS, conversation="7")  # type: ignore[arg-type]
    assert (first, second) == (None, "Aria")
    assert sum("cannot constrain" in r.getMessage() for r in caplog.records) == 1


#: transcripts where people talk among themselves (the free model names a person), and scenes
PEOPLE_TALK = [
    Turn("Alice", "Bob, did you bring the lantern?", "1"),
    Turn("Bob", "I did, Alice. It's by the door.", "2"),
    Turn("Alice", "Bob, can you light it?", "3"),
]
SCRIPTS = {
    "people": PEOPLE_TALK,
    "market": [
        Turn("Alice", "Hi Bob!", "1"), Turn("Bob", "Hi Alice! How was the market?", "2"),
        Turn("Alice", "Busy. Bob, did you see Cara there?", "3"), Turn("Cara", "I was there too!", "4"),
    ],
    "stew": [
        Turn("Alice", "Aria, the captain looks hungry.", "1"),
        Turn("Aria", "Then she'll have the stew, like everyone.", "2", role="character"),
        Turn("Captain Brass", "Stew? On my airship we eat biscuits.", "3", role="character"),
        Turn("Aria", "Biscuits! Captain, you wound me.", "4", role="character"),
    ],
    "map": TURNS,
}
CASTS = {2: ("Aria", "Captain Brass"), 3: ("Aria", "Captain Brass", "Professor Quill")}


async def test_the_free_model_names_a_person_where_people_talk(
    embedded: LlamaCppBackend, library: CharacterLibrary
) -> None:
    service = ChatService(Unconstrained(embedded), parse_config({"backend": {"n_ctx": 2048}}))  # type: ignore[arg-type]
    cast = [library.get(n) for n in CASTS[2]]
    assert await service.pick_speaker(cast, PEOPLE_TALK, conversation="free") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("size", sorted(CASTS))
async def test_the_real_model_always_names_a_cast_member(
    embedded: LlamaCppBackend, library: CharacterLibrary, size: int
) -> None:
    service = ChatService(embedded, parse_config({"backend": {"n_ctx": 2048}, "scene": {"director": "model"}}))
    cast = [library.get(n) for n in CASTS[size]]
    picks = [await service.pick_speaker(cast, turns, conversation=key) for key, turns in SCRIPTS.items()]  # type: ignore[arg-type]
    assert all(pick in CASTS[size] for pick in picks), picks


async def test_a_sampled_constrained_choice_is_a_choice_for_every_seed(
    embedded: LlamaCppBackend, library: CharacterLibrary
) -> None:
    service = ChatService(embedded, parse_config({"backend": {"n_ctx": 2048}}))
    cast = [library.get(n) for n in CASTS[3]]
    prompt = await service.build(cast[0], PEOPLE_TALK, conversation="seeds", cast=cast)  # type: ignore[arg-type]
    choices = [f"{name}]" for name in CASTS[3]]
    for seed in range(1, 6):
        request = GenerationRequest(prompt=prompt.text[: prompt.history_end] + "[", max_tokens=16,
                                    sampling=Sampling(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=seed),
                                    conversation="seeds")
        assert await embedded.choose(request, choices) in choices


async def test_the_reply_after_the_pick_reads_only_its_speakers_tag(
    embedded: LlamaCppBackend, library: CharacterLibrary
) -> None:
    service = ChatService(embedded, parse_config({"backend": {"n_ctx": 2048}, "prompt": {"max_reply_tokens": 4}}))
    cast = [library.get(n) for n in CASTS[2]]
    assert await service.read_ahead(cast[0], PEOPLE_TALK, conversation="cost", cast=cast) > 300  # type: ignore[arg-type]
    picked = await service.pick_speaker(cast, PEOPLE_TALK, conversation="cost")  # type: ignore[arg-type]
    speaker = next(c for c in cast if c and c.name == picked)
    reply = await service.reply(speaker, PEOPLE_TALK, conversation="cost", cast=cast)  # type: ignore[arg-type]
    await reply.collect()
    assert reply.stats.timings and reply.stats.timings.prompt_evaluated is not None
    tag = (await embedded.count_tokens([f"{picked}]:"]))[0]
    assert reply.stats.timings.prompt_evaluated <= tag + 1  # the pick kept the transcript cached


async def test_choices_that_share_their_first_tokens_are_told_apart(
    embedded: LlamaCppBackend, library: CharacterLibrary
) -> None:
    service = ChatService(embedded, parse_config({"backend": {"n_ctx": 2048}}))
    cast = [library.get(n) for n in CASTS[2]]
    prompt = await service.build(cast[0], TURNS, conversation="shared", cast=cast)  # type: ignore[arg-type]
    choices = ["Captain Hook]", "Captain Brass]", "Captain Brassica]", "Captain]"]
    request = GenerationRequest(prompt=prompt.text[: prompt.history_end] + "[", sampling=Sampling(temperature=0.0),
                                conversation="shared")
    assert await embedded.choose(request, choices) in choices


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
