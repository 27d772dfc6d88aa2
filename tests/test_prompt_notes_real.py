"""Notes after the history, read by the real embedded model (Gemma 3 270M): the model
answers as the character, never with an empty first attempt caused by the note."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards.loader import load_card
from bot.chat import ChatService, resolve_sampling
from bot.config import parse_config
from bot.prompt.types import Turn

pytestmark = pytest.mark.model

ARIA = load_card(Path(__file__).resolve().parent.parent / "characters" / "aria.yaml")
MENTIONS = [
    [Turn("Bob", "@Aria Evening, Aria! What's good tonight?", "1")],
    [Turn("Cleo", "@Aria Is that a cat on the warm chair?", "1")],
    [Turn("Dmitri", "@Aria Do you have a room for the night?", "1")],
]
#: a handful of samples; the model opens with another speaker's line about 1 time in 100
#: even without a note, so this guards against a note that makes it common (written as a
#: "[System note: …]" line, it led to "[S]: …" openings), not against that base rate
SEEDS = (1, 2, 3)


async def test_a_note_after_the_history_never_empties_the_first_attempt(embedded: LlamaCppBackend) -> None:
    chat = ChatService(embedded, parse_config({"prompt": {"max_reply_tokens": 24}}))
    sampling = resolve_sampling(chat.config, ARIA)
    retried = []
    for index, turns in enumerate(MENTIONS):
        for seed in SEEDS:
            channel = f"tavern-{index}-{seed}"
            await chat.conversations.set_note(channel, "Keep replies short.")
            reply = await chat.reply(ARIA, turns, conversation=channel, sampling=replace(sampling, seed=seed))
            assert reply.prompt.text.endswith("Keep replies short.)\n[Aria]:")
            await reply.collect()
            if reply.stats.retries:
                retried.append((turns[-1].text, seed))
    assert retried == []
