"""ChatService: prompt in, stop-enforced reply out, for every front end."""

from __future__ import annotations

import re

import pytest

from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards.model import Character
from bot.chat import ChatService, TokenCounter
from bot.config import parse_config
from bot.errors import BackendUnavailable
from bot.prompt.types import Turn
from bot.testing import ScriptedBackend

ARIA = Character(
    name="Aria",
    description="Aria runs the Copper Kettle tavern; warm, quick-witted, teases regulars.",
    scenario="Evening at the Copper Kettle.",
    first_mes="Welcome to the Copper Kettle!",
    mes_example="<START>\n{{user}}: What's on the menu?\n{{char}}: Mutton stew and bread. The stew's the safe bet.",
)
TURNS = [
    Turn("Aria", "Welcome to the Copper Kettle!", "1", "character"),
    Turn("Bob", "Evening, Aria. What's good tonight?", "2"),
    Turn("Cleo", "And is the pie safe?", "3"),
]


def service(backend: object, **config: object) -> ChatService:
    return ChatService(backend, parse_config(config))  # type: ignore[arg-type]


async def test_reply_is_cut_at_a_stop_the_backend_ignored(scripted: ScriptedBackend) -> None:
    scripted.queue(["The stew", ", always.\n[Bo", "b]: I'll take two!"])
    reply = await (await service(scripted).reply(ARIA, TURNS, conversation="c")).collect()
    assert reply == "The stew, always."


async def test_request_carries_the_prompt_stops_and_conversation(scripted: ScriptedBackend) -> None:
    scripted.queue(["Stew."])
    await (await service(scripted).reply(ARIA, TURNS, conversation="chan-1")).collect()
    request = scripted.requests[0]
    assert request.prompt.endswith("[Aria]:")
    assert "\n[Bob]:" in request.stops and "\n[Cleo]:" in request.stops
    assert request.conversation == "chan-1" and request.keep_tokens > 0
    assert request.max_tokens == 200


async def test_leading_own_name_is_trimmed(scripted: ScriptedBackend) -> None:
    scripted.queue(["[Ari", "a]: Stew, love."])
    assert await (await service(scripted).reply(ARIA, TURNS)).collect() == "Stew, love."


async def test_empty_reply_is_retried_once(scripted: ScriptedBackend) -> None:
    scripted.queue(["   ", "\n[Bob]: hi"], ["Second try."])
    reply = await service(scripted).reply(ARIA, TURNS, conversation="c")
    assert await reply.collect() == "Second try."
    assert reply.stats.retries == 1 and len(scripted.requests) == 2


async def test_empty_twice_gives_an_empty_reply_for_the_front_end_to_handle(scripted: ScriptedBackend) -> None:
    scripted.queue([""], [""])
    reply = await service(scripted).reply(ARIA, TURNS)
    assert await reply.collect() == "" and len(scripted.requests) == 2


async def test_prefill_starts_the_reply(scripted: ScriptedBackend) -> None:
    scripted.queue([" the stew, obviously."])
    reply = await service(scripted).reply(ARIA, TURNS, prefill="Well,")
    assert await reply.collect() == " the stew, obviously."
    assert scripted.requests[0].prompt.endswith("[Aria]: Well,")


async def test_backend_errors_reach_the_caller(scripted: ScriptedBackend) -> None:
    scripted.queue(BackendUnavailable("connection refused", backend="openai http://127.0.0.1:9"))
    with pytest.raises(BackendUnavailable, match="127.0.0.1:9"):
        await (await service(scripted).reply(ARIA, TURNS)).collect()


async def test_stats_are_kept_per_conversation(scripted: ScriptedBackend) -> None:
    scripted.queue(["Stew."])
    chat = service(scripted)
    await (await chat.reply(ARIA, TURNS, conversation="room")).collect()
    stats = chat.last_stats("room")
    assert stats.n_ctx == 4096 and stats.prompt_tokens > 0 and stats.turns_kept == 3
    assert stats.timings is not None and stats.seconds_total >= 0


async def test_budget_leaves_room_for_the_reply(scripted: ScriptedBackend) -> None:
    chat = service(scripted, prompt={"max_reply_tokens": 100})
    assert await chat.budget() == 4096 - 100 - 16
    capped = service(scripted, prompt={"token_budget": 1000})
    assert await capped.budget() == 1000


async def test_window_anchor_is_remembered_per_conversation(scripted: ScriptedBackend) -> None:
    chat = service(scripted, prompt={"token_budget": 200})
    turns = [Turn("Bob" if i % 2 else "Cleo", f"message number {i} " * 3, str(i)) for i in range(1, 60)]
    prompt = (await chat.reply(ARIA, turns, conversation="room")).prompt
    assert prompt.first_turn_id is not None and (await chat.conversations.get("room")).anchor == prompt.first_turn_id
    again = await chat.build(ARIA, turns + [Turn("Bob", "one more", "60")], conversation="room")
    assert again.first_turn_id == prompt.first_turn_id  # the window grew in place


@pytest.mark.model
async def test_real_model_reply_never_contains_another_speakers_turn(embedded: LlamaCppBackend) -> None:
    chat = service(embedded, sampling={"preset": "creative"}, prompt={"max_reply_tokens": 120})
    for attempt in range(3):
        reply = await chat.reply(ARIA, TURNS, conversation=f"e2e-{attempt}")
        text = await reply.collect()
        assert not re.search(r"^\s*\[[^\]\n]*\]\s*:", text, re.MULTILINE), text
        assert "[Bob]" not in text and "[Cleo]" not in text
        assert reply.stats.timings is not None and reply.stats.timings.prompt_tokens


async def test_looping_reply_is_ended(scripted: ScriptedBackend) -> None:
    scripted.queue(["Ha"] + ["ha"] * 2000)
    reply = await service(scripted).reply(ARIA, TURNS)
    text = await reply.collect()
    assert text.startswith("Haha") and len(text) < 600
    assert reply.stats.stop == "repetition"


async def test_reply_opening_as_another_speaker_is_never_shown(scripted: ScriptedBackend) -> None:
    scripted.queue(["[Bob]: Aria is wrong, ", "the pie is great"], ["The pie? Brave."])
    reply = await service(scripted).reply(ARIA, TURNS)
    assert await reply.collect() == "The pie? Brave."
    assert reply.stats.retries == 1


async def test_token_counter_bounds_the_text_it_keeps_by_size(scripted: ScriptedBackend) -> None:
    counter = TokenCounter(scripted, max_chars=10_000)
    texts = [f"{i} " + "long message " * 80 for i in range(50)]  # about 1 KB each
    await counter.prime(texts)
    counter.misses.clear()
    counter.count(texts[-1])
    counter.count(texts[0])
    assert counter.cached_chars <= 10_000
    assert counter.misses == [texts[0]]  # the oldest were let go, the newest kept
