"""The prompt builder's memory inputs: recalled lines before the newest turn, the summary after
the card, the room kept for recall, and the parts /context marks."""

from __future__ import annotations

from test_prompt_builder import TURNS, build, card, chars4, config

from bot.prompt.builder import RECALL_HEADING, SUMMARY_HEADING, build_prompt
from bot.prompt.types import Turn

RECALLED = [Turn("Bob", "my cat is called Biscuit", "0")]


def test_recalled_lines_go_just_before_the_newest_turn() -> None:
    prompt = build(recalled=RECALLED, recall_room=120)
    recall = prompt.text.index(RECALL_HEADING)
    assert prompt.text.index("[Aria]: hey Bob") < recall < prompt.text.index("[Carol]: sing us")
    assert "- Bob: my cat is called Biscuit" in prompt.recalled


def test_recalled_lines_leave_the_bytes_before_the_newest_turn_unchanged() -> None:
    plain = build(recall_room=120)
    recalled = build(recalled=RECALLED, recall_room=120)
    before_newest = plain.text[: plain.text.index("[Carol]:")]
    assert recalled.text.startswith(before_newest)
    assert recalled.prefix == plain.prefix


def test_the_room_kept_for_recall_keeps_the_window_the_same_with_or_without_recalled_lines() -> None:
    turns = [Turn("Bob", f"message number {i} " + "words " * 10, str(i)) for i in range(1, 40)]
    plain = build(turns, budget=600, recall_room=60)
    recalled = build(turns, budget=600, recall_room=60, recalled=RECALLED, anchor=plain.first_turn_id)
    assert recalled.first_turn_id == plain.first_turn_id
    assert recalled.token_count <= 600


def test_recalled_lines_beyond_the_room_are_left_out() -> None:
    many = [Turn("Bob", f"fact {i} " + "detail " * 12, str(i)) for i in range(5)]
    prompt = build(recalled=many, recall_room=60)
    assert chars4(prompt.text[slice(*dict((n, (b, e)) for n, b, e in prompt.parts)["recalled"])]) <= 60
    assert "fact 0" in prompt.recalled and "fact 4" not in prompt.recalled


def test_without_room_nothing_is_recalled() -> None:
    prompt = build(recalled=RECALLED, recall_room=0)
    assert RECALL_HEADING not in prompt.text and prompt.recalled == ""


def test_the_summary_goes_after_the_card_and_before_the_history() -> None:
    prompt = build(summary="Bob lost his cat at the docks.")
    summary = prompt.text.index(SUMMARY_HEADING)
    assert len(prompt.prefix) <= summary < prompt.text.index("[Bob]: hi Aria")
    assert "Bob lost his cat" in prompt.messages[1].content


def test_parts_mark_card_summary_history_recalled_history_note_in_order() -> None:
    prompt = build(summary="They met.", recalled=RECALLED, recall_room=120, note="It is night.")
    assert [name for name, _, _ in prompt.parts] == ["card", "summary", "history", "recalled", "history", "note"]
    assert prompt.parts[0][1] == 0 and prompt.parts[-1][2] == len(prompt.text)
    assert all(a[2] == b[1] for a, b in zip(prompt.parts, prompt.parts[1:]))


def test_chat_messages_carry_the_recalled_lines_before_the_newest_turn() -> None:
    prompt = build_prompt(card(), TURNS, config=config(format="chatml"), count_tokens=chars4, budget=2000,
                          recalled=RECALLED, recall_room=120)
    contents = [m.content for m in prompt.messages]
    recall = next(i for i, c in enumerate(contents) if c.startswith(RECALL_HEADING))
    assert prompt.messages[recall].role == "system" and "Carol" in contents[recall + 1]
