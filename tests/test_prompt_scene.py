"""A scene's prompt: one shared head for every member, only the closing tag differs."""

from __future__ import annotations

import pytest

from bot.cards.model import Character, LoreEntry, Lorebook
from bot.config import PromptConfig
from bot.prompt.builder import build_prompt
from bot.prompt.transcript import TURN_START
from bot.prompt.types import Prompt, Turn


def chars4(text: str) -> int:
    return len(text) // 4 + 1


ARIA = Character(
    name="Aria", description="{{char}} keeps the inn.", personality="warm", scenario="{{char}} pours cider.",
    mes_example="<START>\n{{user}}: Cider?\n{{char}}: Coming up.", system_prompt="Only {{char}} speaks.",
    lorebook=Lorebook(entries=[LoreEntry(content="{{char}} owns a cat.", constant=True),
                               LoreEntry(keys=["stew"], content="{{char}}'s stew is famous.")]),
)
BRASS = Character(
    name="Captain Brass", description="{{char}} flies an airship.", personality="gruff",
    mes_example="<START>\n{{user}}: Orders?\n{{char}}: Swab the deck.", stop_strings=["ENDBRASS"],
    lorebook=Lorebook(entries=[LoreEntry(content="{{char}} lost an arm.", constant=True, position="after_char")]),
)
CAST = (ARIA, BRASS)
TURNS = [
    Turn("Alice", "hi both, any stew?", "1"),
    Turn("Aria", "Plenty.", "2", role="character"),
    Turn("Captain Brass", "Bah.", "3", role="character"),
    Turn("Aria", "I'm Aria too", "4"),  # a person with a member's name
]


def build(speaker: Character, turns: list[Turn] = TURNS, **options: object) -> Prompt:
    return build_prompt(speaker, turns, config=PromptConfig(), count_tokens=chars4, budget=3000, cast=CAST,
                        **options)  # type: ignore[arg-type]


def test_only_the_closing_tag_differs_between_speakers() -> None:
    aria, brass = build(ARIA), build(BRASS)
    assert aria.prefix == brass.prefix
    assert aria.text.removesuffix("[Aria]:") == brass.text.removesuffix("[Captain Brass]:")


def test_the_group_system_prompt_names_no_speaker_and_replaces_the_cards() -> None:
    head = build(ARIA).prefix
    assert head.startswith("This is a conversation in a chat room between people and the characters "
                           "Aria and Captain Brass.")
    assert "Only Aria speaks" not in head


def test_every_members_card_is_in_the_head_in_cast_order_with_its_own_name() -> None:
    head = build(BRASS).prefix
    aria_at = head.index("Character: Aria\nAria owns a cat.\nAria keeps the inn.")
    brass_at = head.index("Character: Captain Brass\nCaptain Brass flies an airship.")
    assert aria_at < brass_at
    assert "Captain Brass's personality: gruff\nCaptain Brass lost an arm." in head
    assert "[User]: Cider?\n[Aria]: Coming up." in head and "[User]: Orders?\n[Captain Brass]: Swab the deck." in head


def test_keyed_lore_from_any_member_goes_after_the_history() -> None:
    prompt = build(BRASS)
    assert "Aria's stew is famous." in prompt.text[prompt.history_end:]


def test_each_member_speaks_under_its_own_name_and_people_never_pass_for_one() -> None:
    prompt = build(ARIA)
    history = prompt.text[len(prompt.prefix):prompt.history_end]
    assert history == "[Alice]: hi both, any stew?\n[Aria]: Plenty.\n[Captain Brass]: Bah.\n[Aria (user)]: I'm Aria too\n"
    assert all(TURN_START.match(line) for line in history.splitlines())


def test_stops_are_every_person_and_every_other_member_and_the_speakers_own() -> None:
    stops = build(BRASS).stops
    assert {"\n[Alice]:", "\n[Aria]:", "\n[Aria (user)]:", "\n[User]:", "ENDBRASS"} <= set(stops)
    assert "\n[Captain Brass]:" not in stops
    assert "\n[Captain Brass]:" in build(ARIA).stops and "ENDBRASS" not in build(ARIA).stops


def test_a_former_member_in_the_history_is_stopped_on_too() -> None:
    turns = [*TURNS, Turn("Professor Quill", "Fascinating.", "5", role="character")]
    prompt = build(ARIA, turns)
    assert "[Professor Quill]: Fascinating.\n" in prompt.text and "\n[Professor Quill]:" in prompt.stops


@pytest.mark.parametrize("turns", [TURNS, []])
def test_a_cast_of_one_is_the_characters_own_prompt(turns: list[Turn]) -> None:
    alone = build_prompt(ARIA, turns, config=PromptConfig(), count_tokens=chars4, budget=3000)
    assert build_prompt(ARIA, turns, config=PromptConfig(), count_tokens=chars4, budget=3000, cast=(ARIA,)) == alone
