"""Lorebook selection rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cards.loader import load_card
from bot.cards.model import LoreEntry, Lorebook
from bot.prompt.lorebook import entry_text, select_lore
from bot.prompt.types import Turn

ARIA = Path(__file__).resolve().parent.parent / "characters" / "aria.yaml"


def words(text: str) -> int:
    return len(text.split())


def book(*entries: LoreEntry, **kwargs: object) -> Lorebook:
    return Lorebook(entries=list(entries), **kwargs)


def said(*texts: str) -> list[Turn]:
    """People's messages, oldest first."""
    return [Turn("Bob", text) for text in texts]


def chosen(selection_book: Lorebook, texts: list[str] | list[Turn], **kwargs: object) -> list[str]:
    turns = [t if isinstance(t, Turn) else Turn("Bob", t) for t in texts]
    selection = select_lore(selection_book, turns, count_tokens=words, **kwargs)  # type: ignore[arg-type]
    return [e.content for e in selection.entries]


def test_constant_entries_are_always_chosen() -> None:
    assert chosen(book(LoreEntry(content="always", constant=True)), []) == ["always"]


def test_disabled_entries_are_never_chosen() -> None:
    lore = book(
        LoreEntry(content="off", constant=True, enabled=False),
        LoreEntry(keys=["x"], content="off2", enabled=False),
    )
    assert chosen(lore, ["x"]) == []


def test_keyed_entry_is_chosen_when_a_key_appears() -> None:
    assert chosen(book(LoreEntry(keys=["dragon"], content="Dragons breathe fire.")), ["I saw a dragon"]) == [
        "Dragons breathe fire."
    ]


def test_keyed_entry_is_not_chosen_without_its_key() -> None:
    assert chosen(book(LoreEntry(keys=["dragon"], content="lore")), ["nothing here"]) == []


def test_keys_older_than_the_scan_depth_are_not_seen() -> None:
    lore = book(LoreEntry(keys=["dragon"], content="lore"), scan_depth=2)
    assert chosen(lore, ["dragon", "a", "b"]) == []
    assert chosen(lore, ["a", "dragon", "b"]) == ["lore"]


def test_default_scan_depth_is_four_turns() -> None:
    lore = book(LoreEntry(keys=["dragon"], content="lore"))
    assert chosen(lore, ["dragon", "a", "b", "c", "d"]) == []
    assert chosen(lore, ["dragon", "a", "b", "c"]) == ["lore"]


def test_keys_match_case_insensitively_by_default() -> None:
    assert chosen(book(LoreEntry(keys=["Dragon"], content="lore")), ["DRAGON!"]) == ["lore"]


def test_case_sensitive_entry_needs_the_exact_case() -> None:
    lore = book(LoreEntry(keys=["Dragon"], content="lore", case_sensitive=True))
    assert chosen(lore, ["dragon"]) == []
    assert chosen(lore, ["Dragon"]) == ["lore"]


def test_selective_entry_needs_a_secondary_key_too() -> None:
    entry = LoreEntry(keys=["castle"], secondary_keys=["night", "dark"], selective=True, content="haunted")
    lore = book(entry)
    assert chosen(lore, ["the castle at noon"]) == []
    assert chosen(lore, ["the castle after dark"]) == ["haunted"]


def test_selective_entry_without_secondary_keys_needs_only_a_key() -> None:
    assert chosen(book(LoreEntry(keys=["castle"], selective=True, content="c")), ["castle"]) == ["c"]


def test_regex_keys_are_regular_expressions() -> None:
    lore = book(LoreEntry(keys=[r"\bdrag(on|ons)\b"], use_regex=True, content="lore"))
    assert chosen(lore, ["two dragons"]) == ["lore"]
    assert chosen(lore, ["dragoon"]) == []


def test_slash_regex_keys_take_flags() -> None:
    lore = book(LoreEntry(keys=["/^ice$/im"], use_regex=True, content="lore", case_sensitive=True))
    assert chosen(lore, ["fire\nICE"]) == ["lore"]


@pytest.mark.timeout(10)
def test_invalid_regex_is_ignored_not_raised() -> None:
    lore = book(
        LoreEntry(keys=["([unclosed"], use_regex=True, content="bad"),
        LoreEntry(keys=["(a+)+$"], use_regex=True, content="slow"),
        LoreEntry(keys=["fine"], use_regex=True, content="good"),
    )
    assert chosen(lore, ["([unclosed fine " + "a" * 40 + "!"]) == ["good"]


def test_highest_priority_wins_within_the_budget() -> None:
    lore = book(
        LoreEntry(keys=["x"], content="low priority words here", priority=1, insertion_order=0),
        LoreEntry(keys=["x"], content="high priority words here", priority=9, insertion_order=1),
        token_budget=5,
    )
    assert chosen(lore, ["x"]) == ["high priority words here"]


def test_equal_priority_prefers_the_lower_insertion_order() -> None:
    lore = book(
        LoreEntry(keys=["x"], content="second entry", insertion_order=2),
        LoreEntry(keys=["x"], content="first entry", insertion_order=1),
        token_budget=2,
    )
    assert chosen(lore, ["x"]) == ["first entry"]


def test_constant_entries_take_the_budget_before_keyed_ones() -> None:
    lore = book(
        LoreEntry(keys=["x"], content="keyed and important", priority=100),
        LoreEntry(content="constant one", constant=True),
        token_budget=3,
    )
    assert chosen(lore, ["x"]) == ["constant one"]


def test_output_is_ordered_by_insertion_order() -> None:
    lore = book(
        LoreEntry(keys=["x"], content="c", insertion_order=3, priority=5),
        LoreEntry(keys=["x"], content="a", insertion_order=1),
        LoreEntry(keys=["x"], content="b", insertion_order=2, priority=9),
    )
    assert chosen(lore, ["x"]) == ["a", "b", "c"]


def test_entries_are_split_by_position() -> None:
    lore = book(
        LoreEntry(content="before", constant=True, position="before_char"),
        LoreEntry(content="after", constant=True, position="after_char"),
    )
    selection = select_lore(lore, [], count_tokens=words)
    assert [e.content for e in selection.before] == ["before"]
    assert [e.content for e in selection.after] == ["after"]


def test_recursive_scanning_follows_keys_in_chosen_content() -> None:
    first = LoreEntry(keys=["king"], content="The king owns a sword.")
    second = LoreEntry(keys=["sword"], content="The sword is cursed.")
    assert chosen(book(first, second), ["the king"]) == ["The king owns a sword."]
    assert chosen(book(first, second, recursive_scanning=True), ["the king"]) == [
        "The king owns a sword.", "The sword is cursed.",
    ]


def test_decorator_lines_are_not_prompt_text() -> None:
    assert entry_text(LoreEntry(content="@@depth 4\n@@activate\nThe real text.")) == "The real text."


def test_no_book_selects_nothing() -> None:
    assert select_lore(None, said("x"), count_tokens=words).entries == ()


# ---------------------------------------------------------------- whole words


def test_plain_key_does_not_match_inside_a_longer_word() -> None:
    lore = book(LoreEntry(keys=["cat"], content="lore"))
    assert chosen(lore, ["how long does a game of catan take", "suggest three trivia categories"]) == []


def test_plain_key_matches_as_a_word_next_to_punctuation() -> None:
    lore = book(LoreEntry(keys=["cat"], content="lore"))
    assert chosen(lore, ["is that your Cat?"]) == ["lore"]


def test_key_with_spaces_matches_as_written() -> None:
    lore = book(LoreEntry(keys=["stay the night"], content="lore"))
    assert chosen(lore, ["can I stay the night, love?"]) == ["lore"]


def test_key_ending_in_punctuation_needs_no_boundary_after_it() -> None:
    lore = book(LoreEntry(keys=["Dr."], content="lore"))
    assert chosen(lore, ["ask Dr.Quill"]) == ["lore"]


def test_key_in_a_script_without_spaces_matches_inside_a_sentence() -> None:
    lore = book(LoreEntry(keys=["猫"], content="lore"))
    assert chosen(lore, ["猫が好き"]) == ["lore"]


def test_entry_can_ask_for_substring_matching() -> None:
    lore = book(LoreEntry(keys=["cat"], content="lore", extensions={"match_whole_words": False}))
    assert chosen(lore, ["catan"]) == ["lore"]


def test_book_can_ask_for_substring_matching() -> None:
    lore = book(LoreEntry(keys=["cat"], content="lore"), extensions={"match_whole_words": False})
    assert chosen(lore, ["catan"]) == ["lore"]


def test_entry_setting_wins_over_the_book() -> None:
    entry = LoreEntry(keys=["cat"], content="lore", extensions={"match_whole_words": True})
    assert chosen(book(entry, extensions={"match_whole_words": False}), ["catan"]) == []


def test_null_entry_setting_follows_the_book() -> None:
    entry = LoreEntry(keys=["cat"], content="lore", extensions={"match_whole_words": None})
    assert chosen(book(entry, extensions={"match_whole_words": False}), ["catan"]) == ["lore"]


def test_regex_keys_are_not_made_whole_word() -> None:
    lore = book(LoreEntry(keys=["cat"], use_regex=True, content="lore"))
    assert chosen(lore, ["catan"]) == ["lore"]


def test_secondary_keys_match_whole_words_too() -> None:
    entry = LoreEntry(keys=["castle"], secondary_keys=["dark"], selective=True, content="haunted")
    assert chosen(book(entry), ["the castle after darkness"]) == []


# ---------------------------------------------------------------- whose messages


def test_the_characters_own_reply_does_not_trigger_an_entry() -> None:
    lore = book(LoreEntry(keys=["room"], content="lore"))
    turns = [Turn("Bob", "anything new?"), Turn("Aria", "in the back of the room,", role="character")]
    assert chosen(lore, turns + said("and then?")) == []


def test_an_entry_leaves_once_people_stop_naming_it() -> None:
    lore = book(LoreEntry(keys=["cat"], content="lore"), scan_depth=4)
    aria = [Turn("Aria", "I have two cats. The cat sleeps.", role="character")]
    history = said("do you have a cat?") + aria + said("nice") + aria + said("what about ale?") + aria
    assert chosen(lore, history) == []


def test_out_of_character_notes_are_scanned() -> None:
    lore = book(LoreEntry(keys=["dragon"], content="lore"))
    assert chosen(lore, [Turn("System", "a dragon lands", role="system")]) == ["lore"]


# ---------------------------------------------------------------- the bundled Aria card


@pytest.fixture
def aria_book() -> Lorebook:
    lorebook = load_card(ARIA).lorebook
    assert lorebook is not None
    return lorebook


def keyed_names(lore: Lorebook, turns: list[Turn]) -> list[str]:
    selection = select_lore(lore, turns, count_tokens=words)
    return [e.name for e in selection.entries if not e.constant]


@pytest.mark.parametrize("text", ["how long does a game of catan take", "suggest three trivia categories"])
def test_aria_cat_entry_ignores_words_that_start_with_cat(aria_book: Lorebook, text: str) -> None:
    assert keyed_names(aria_book, said(text)) == []


def test_aria_cat_entry_fires_on_the_cat(aria_book: Lorebook) -> None:
    assert keyed_names(aria_book, said("does the cat have a name?")) == ["Biscuit the cat"]


def test_aria_naming_the_room_herself_does_not_bring_in_rooms(aria_book: Lorebook) -> None:
    turns = [Turn("Bob", "where is the bard?"), Turn("Aria", "in the back of the room,", role="character")]
    for _ in range(5):
        turns += said("go on")
        assert keyed_names(aria_book, turns) == []
        turns.append(Turn("Aria", "The room is quiet, in the back of the room,", role="character"))
