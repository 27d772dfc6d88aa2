"""The running summary: the turns a sliding window drops are folded in by the model while idle.
Pure parts (the request, the cleaning) and, with the real embedded model, the whole loop."""

from __future__ import annotations

import re
from pathlib import Path

from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.conversations import Conversations
from bot.memory import Memory
from bot.memory.summary import clean_summary, summary_request
from bot.prompt import get_template
from bot.prompt.builder import SUMMARY_HEADING
from bot.prompt.types import Turn
from bot.store import open_store
from bot.testing import ScriptedBackend

ARIA = Character(name="Aria", description="Aria keeps the Copper Kettle tavern and answers briefly.")
CHANNEL = "4242"
TOPICS = ["the harvest festival", "a lost grey cat", "the bridge repairs", "a letter from Lisbon", "the new ale"]
TURN_LINE = re.compile(r"\[[^\]]+\]:")


def chat_turns(count: int, start: int = 0) -> list[Turn]:
    return [Turn(("Bob", "Cleo")[i % 2], f"Message {i}: let us talk about {TOPICS[i % len(TOPICS)]}.", str(1000 + i))
            for i in range(start, start + count)]


def test_the_request_holds_the_old_summary_and_the_dropped_turns_and_stops_at_a_new_turn() -> None:
    text, messages, stops = summary_request(get_template("transcript"), "Aria", "Bob met Cleo.", chat_turns(2),
                                            words=50)
    assert "Bob met Cleo." in text and "Cleo said: \"Message 1" in text and "at most 50 words" in text
    assert "\n[" in stops and messages[-1].content.endswith("Updated summary:") and text.endswith("In this chat,")


def test_cleaning_drops_chat_lines_and_a_cut_sentence() -> None:
    written = "In this chat, Bob asked about the cat.\n[Bob]: where is it?\nCleo promised to look. Then she"
    assert clean_summary(written) == "In this chat, Bob asked about the cat. Cleo promised to look."


async def test_a_slide_is_folded_into_the_summary_by_the_model_and_the_next_prompt_carries_it(
    tmp_path: Path,
) -> None:
    config = parse_config({"prompt": {"history_messages": 6}})
    backend = ScriptedBackend()  # "…" until the summary is queued
    async with open_store(f"sqlite:///{tmp_path / 'troupe.db'}") as store:
        conversations = Conversations(None, store)
        chat = ChatService(backend, config, conversations, Memory(store, lambda: config.memory))
        turns = chat_turns(4)
        while not chat.summaries.pending(CHANNEL):
            await (await chat.reply(ARIA, turns, conversation=CHANNEL)).collect()
            turns += chat_turns(1, len(turns))
        backend.queue([" Bob and Cleo talked about the harvest.\n[Bob]: more"], ["Mm."])
        await chat.summaries.fold(CHANNEL)
        assert (await conversations.get(CHANNEL)).summary == "In this chat, Bob and Cleo talked about the harvest."
        await (await chat.reply(ARIA, turns, conversation=CHANNEL)).collect()
    summarising = next(r for r in backend.requests if "Updated summary:" in r.prompt)
    assert "Bob said: \"Message" in summarising.prompt and summarising.max_tokens == config.memory.summary_tokens
    assert f"{SUMMARY_HEADING} In this chat, Bob and Cleo talked about the harvest." in backend.requests[-1].prompt


async def test_real_model_summary_after_several_slides_has_no_chat_lines_and_the_next_reply_reads_only_the_floor(
    embedded: LlamaCppBackend, tmp_path: Path
) -> None:
    config = parse_config({"prompt": {"history_messages": 8, "max_reply_tokens": 6},
                           "memory": {"summary_tokens": 60}})
    async with open_store(f"sqlite:///{tmp_path / 'troupe.db'}") as store:
        conversations = Conversations(None, store)
        chat = ChatService(embedded, config, conversations, Memory(store, lambda: config.memory))
        turns = chat_turns(4)
        folds = 0
        while folds < 3:
            reply = await chat.reply(ARIA, turns, conversation=CHANNEL)
            turns.append(Turn("Aria", await reply.collect() or "Mm.", str(1000 + len(turns)), "character"))
            turns += chat_turns(2, len(turns))
            if chat.summaries.pending(CHANNEL):  # idle now: fold, then read the channel ahead
                await chat.summaries.fold(CHANNEL)
                folds += 1
        await chat.read_ahead(ARIA, turns, conversation=CHANNEL)
        summary = (await conversations.get(CHANNEL)).summary
        turns.append(Turn("Bob", "Aria, what do you think?", str(1000 + len(turns))))
        reply = await chat.reply(ARIA, turns, conversation=CHANNEL)
        await reply.collect()
    assert summary and not TURN_LINE.search(summary)
    assert len(embedded._tokenize(embedded._llm, summary, bos=False)) <= 60
    assert reply.stats.timings is not None and reply.stats.timings.prompt_evaluated is not None
    assert reply.stats.timings.prompt_evaluated < 25  # the new message and the opening of the reply
