"""``python -m bot prompt``: a transcript played into a fresh conversation shows the next prompt's
parts in order, with memory as on Discord."""

from __future__ import annotations

import pytest
from test_chat_service import ARIA

from bot.cli import build_parser
from bot.config import parse_config
from bot.errors import ConfigError
from bot.testing import ScriptedBackend
from bot.transcript_replay import parse_transcript, replay

FACT = "Alice: My sister Marguerite lives in Lisbon with three parrots."


def transcript() -> list[str]:
    lines = ["Bob: Evening, Aria!", "Aria: Welcome back, Bob.", FACT]
    fillers = ["the stew needs more salt", "pass the bread please", "that song was lovely", "the fire is warm"]
    for i in range(60):
        lines.append(f"{('Bob', 'Cleo')[i % 2]}: {fillers[i % len(fillers)]} ({i})")
        if i % 6 == 5:
            lines.append(f"Aria: Mm, indeed ({i}).")
    return lines


def test_lines_become_turns_and_the_characters_lines_are_its_replies() -> None:
    turns = parse_transcript(["# a comment", "", "Bob: hi: there", "aria: hello"], "Aria")
    assert [(t.speaker, t.text, t.role) for t in turns] == [("Bob", "hi: there", "user"), ("Aria", "hello", "character")]
    assert int(turns[1].id or 0) > int(turns[0].id or 0)


def test_a_line_without_a_name_is_refused_with_its_number() -> None:
    with pytest.raises(ConfigError, match="chat.txt:2: expected 'Name: text'"):
        parse_transcript(["Bob: hi", "no name here"], "Aria", source="chat.txt")


def test_the_command_takes_history_character_message_and_reply() -> None:
    args = build_parser().parse_args(["prompt", "--history", "chat.txt", "--character", "Aria",
                                      "--message", "Bob: hi", "--reply"])
    assert (args.command, str(args.history), args.character, args.message, args.reply) == (
        "prompt", "chat.txt", "Aria", "Bob: hi", True)


async def test_the_prompt_shows_its_parts_in_order_and_recalls_what_scrolled_out() -> None:
    config = parse_config({"prompt": {"history_messages": 10}})
    backend = ScriptedBackend()
    backend.queue(["Alice's sister lives in Lisbon."])  # every summary, and any reply
    turns = parse_transcript([*transcript(), "Cleo: Aria, where does Alice's sister live?"], "Aria")
    shown = await replay(config, backend, ARIA, turns, reply=False)
    marks = [line for line in shown.splitlines() if line.startswith("===== ")]
    assert marks == ["===== card =====", "===== summary =====", "===== history =====", "===== recalled =====",
                     "===== history =====", "===== note ====="]
    recalled = shown.split("===== recalled =====")[1].split("=====")[0]
    assert "Marguerite" in recalled


async def test_reply_also_generates_it() -> None:
    config = parse_config({"prompt": {"history_messages": 10}})
    backend = ScriptedBackend([["Lisbon, love."]])
    turns = parse_transcript(["Bob: hi", "Cleo: where is everyone?"], "Aria")
    shown = await replay(config, backend, ARIA, turns, reply=True)
    assert shown.endswith("===== reply =====\nLisbon, love.\n")
