"""``python -m bench.memory_slides``: what memory's running summary costs, with the embedded model.

A synthetic channel (people talking, the character answering every fourth message) is
played through the real ``ChatService`` with memory on and a small window, so it slides
again and again. After each reply the idle work runs as on Discord: a slide's dropped turns
are folded into the summary by the model, then the channel is read ahead. Prints the prompt
tokens each reply evaluated, after a slide and otherwise (median; 1.0x means a slide costs
the reply nothing once the idle work is done), and the tokens the model wrote for summaries
per 100 messages.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from bot.backends.llama_cpp import LlamaCppBackend
from bot.backends.model_files import default_model_path
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import LlamaCppConfig, parse_config
from bot.conversations import Conversations
from bot.memory import Memory
from bot.prompt.types import Turn
from bot.store import open_store
from bot.store.urls import sqlite_url

__all__ = ["main", "measure"]

ARIA = Character(name="Aria", description="Aria keeps the Copper Kettle tavern and answers briefly.")
_KEY = "7001"
_TOPICS = ["the harvest festival", "a lost grey cat", "the bridge repairs", "a letter from Lisbon",
           "the new ale", "the storm last night", "Bob's broken cart", "the singing contest"]


async def measure(messages: int, window: int) -> tuple[list[int], list[int], int, int]:
    """(evaluated after a slide, evaluated otherwise, summary tokens written, folds)."""
    config = parse_config({"prompt": {"history_messages": window, "max_reply_tokens": 12},
                           "memory": {"summary_tokens": 80}})
    backend = LlamaCppBackend(LlamaCppConfig(model=str(default_model_path()), n_ctx=2048, seed=1))
    await backend.start()
    slid: list[int] = []
    steady: list[int] = []
    folds = 0
    try:
        with tempfile.TemporaryDirectory(prefix="troupe-bench-slides-") as folder:
            async with open_store(sqlite_url(Path(folder) / "troupe.db")) as store:
                conversations = Conversations(None, store)
                chat = ChatService(backend, config, conversations, Memory(store, lambda: config.memory))
                turns: list[Turn] = []
                folded_before = False
                for i in range(messages):
                    speaker = ("Bob", "Cleo", "Dmitri")[i % 3]
                    turns.append(Turn(speaker, f"Say, Aria, what about {_TOPICS[i % len(_TOPICS)]}? ({i})",
                                      str(10_000 + len(turns))))
                    if i % 4 != 3:
                        continue
                    reply = await chat.reply(ARIA, turns, conversation=_KEY)
                    text = await reply.collect() or "Mm."
                    timings = reply.stats.timings
                    if timings is not None and timings.prompt_evaluated is not None and i > 3:
                        (slid if folded_before else steady).append(timings.prompt_evaluated)
                    turns.append(Turn("Aria", text, str(10_000 + len(turns)), "character"))
                    folded_before = chat.summaries.pending(_KEY)
                    if folded_before:  # the idle work after a slide: fold, then read ahead
                        await chat.summaries.fold(_KEY)
                        folds += 1
                    await chat.read_ahead(ARIA, turns, conversation=_KEY)
                written = chat.summaries.tokens_generated
    finally:
        await backend.aclose()
    return slid, steady, written, folds


def main(argv: list[str] | None = None) -> int:
    """Measure and print the numbers."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory_slides",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="people's messages played (default 100)")
    parser.add_argument("--window", type=int, default=30, help="prompt.history_messages (default 30)")
    args = parser.parse_args(argv)
    slid, steady, written, folds = asyncio.run(measure(args.messages, args.window))
    after = statistics.median(slid) if slid else float("nan")
    usual = statistics.median(steady) if steady else float("nan")
    print(f"replies after a slide: {len(slid)}, evaluated median {after:.0f} tokens")
    print(f"other replies: {len(steady)}, evaluated median {usual:.0f} tokens")
    print(f"after a slide / otherwise: {after / usual:.2f}x")
    per_100 = written * 100 / args.messages
    print(f"summaries: {folds} folds, {written} tokens written, {per_100:.0f} per 100 messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
