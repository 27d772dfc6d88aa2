"""The prompt window across a replayed channel: a stable prefix, append-only growth,
and rare, large moves (so a KV cache is reused on nearly every reply)."""

from __future__ import annotations

import random

from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.prompt.types import Turn
from bot.testing import ScriptedBackend

ARIA = Character(
    name="Aria",
    description="Aria runs the Copper Kettle tavern.",
    mes_example="<START>\n{{user}}: Menu?\n{{char}}: Stew.",
)
SPEAKERS = ["Bob", "Cleo", "Dmitri", "Eve"]


def replay(n: int, seed: int = 5) -> list[Turn]:
    rng = random.Random(seed)
    turns = []
    for i in range(1, n + 1):
        if i % 4 == 0:
            turns.append(Turn("Aria", "Ha! " + "word " * rng.randint(3, 20), str(i), "character"))
        else:
            turns.append(Turn(rng.choice(SPEAKERS), "msg " * rng.randint(2, 40), str(i)))
    return turns


async def test_prefix_is_stable_and_history_only_grows_between_moves() -> None:
    chat = ChatService(ScriptedBackend(), parse_config({"prompt": {"token_budget": 600}}))
    turns = replay(240)
    prompts = []
    for i in range(3, 240, 4):  # as replies do: build, then the conversation learns where its window starts
        prompts.append(await chat.build(ARIA, turns[: i + 1], conversation="room"))
        await chat.conversations.window_moved("room", prompts[-1].first_turn_id, replied=True)
    moves = 0
    for before, after in zip(prompts, prompts[1:]):
        assert after.prefix == before.prefix
        assert after.text.startswith(after.prefix)
        history_before = before.text[: before.text.rindex("\n[Aria]:")]
        if after.first_turn_id == before.first_turn_id:
            assert after.text.startswith(history_before)  # only appended
        else:
            moves += 1
            assert int(after.first_turn_id or 0) - int(before.first_turn_id or 0) >= 5  # a slice at once
    assert 2 <= moves <= len(prompts) // 2  # the window moves, but not on every reply
    assert all(p.token_count <= 600 for p in prompts)


async def test_every_message_renders_to_the_same_bytes_every_time() -> None:
    chat = ChatService(ScriptedBackend(), parse_config({}))
    turns = replay(20)
    first = await chat.build(ARIA, turns, conversation="a")
    second = await chat.build(ARIA, turns, conversation="b")
    assert first.text == second.text


def mention_chat(pairs: int, words: int, seed: int = 3) -> list[Turn]:
    """A mention-and-answer chat: every message asks the character, who answers it."""
    rng = random.Random(seed)
    vocabulary = ["stew", "rain", "road", "ale", "fire", "bread", "song", "boots", "dice", "mug"]
    turns = []
    for i in range(pairs):
        ask = " ".join(rng.choice(vocabulary) for _ in range(words))
        answer = " ".join(rng.choice(vocabulary) for _ in range(words))
        turns.append(Turn(rng.choice(SPEAKERS), f"@Aria {ask}?", f"{2 * i + 1}"))
        turns.append(Turn("Aria", answer.capitalize() + ".", f"{2 * i + 2}", "character"))
    return turns


async def tokens_between_slides(turns: list[Turn]) -> float:
    """The chat tokens appended between two moves of the window (mean), replying to every mention."""
    chat = ChatService(ScriptedBackend(n_ctx=1024), parse_config({}))
    appended, anchor, moves_at = 0, None, []
    for end in range(1, len(turns), 2):
        prompt = await chat.build(ARIA, turns[:end], conversation="room")
        await chat.conversations.window_moved("room", prompt.first_turn_id, replied=True)
        if anchor is not None and prompt.first_turn_id != anchor:
            moves_at.append(appended)
        anchor = prompt.first_turn_id
        appended += sum(chat.counter.count(f"[{t.speaker}]: {t.text}") for t in turns[end - 1:end + 1])
    gaps = [b - a for a, b in zip(moves_at, moves_at[1:])]
    assert len(gaps) >= 3
    return sum(gaps) / len(gaps)


async def test_short_messages_slide_no_more_often_in_tokens_than_long_ones() -> None:
    short = await tokens_between_slides(mention_chat(150, words=5))
    long = await tokens_between_slides(mention_chat(40, words=40))
    # a slide drops whole turns, so a chat of long ones overshoots the freed share by up to a turn
    assert short >= 0.8 * long
