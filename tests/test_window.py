"""The prompt window across a replayed channel: a stable prefix, append-only growth,
and rare, large moves (so a KV cache is reused on nearly every reply)."""

from __future__ import annotations

import random

from bot.backends.scripted import ScriptedBackend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.prompt.types import Turn

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
