"""A reasoning model's thinking never reaches the reply, nor the character's turns in later prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.prompt.types import Turn
from bot.testing import ScriptedBackend
from tests.fakes.openai import FakeOpenAIServer
from tests.fakes.streams import http_backend
from tests.fakes.templated import TemplatedBackend, real_template

ARIA = Character(name="Aria", description="Aria runs the Copper Kettle tavern.", scenario="Evening.")
TURNS = [Turn("Aria", "Welcome!", "1", "character"), Turn("Bob", "What's good tonight?", "2")]


def service(backend: object, **config: object) -> ChatService:
    return ChatService(backend, parse_config(config))  # type: ignore[arg-type]


async def test_thinking_is_kept_out_of_the_reply_and_offered_apart(scripted: ScriptedBackend) -> None:
    scripted.queue(["<thi", "nk>Bob wants", " stew.</th", "ink>\n\nThe stew", ", always."])
    reply = await service(scripted).reply(ARIA, TURNS, conversation="c")
    assert await reply.collect() == "The stew, always."
    assert reply.reasoning == "Bob wants stew."


async def test_the_thinking_is_complete_when_the_first_text_arrives(scripted: ScriptedBackend) -> None:
    scripted.queue(["<think>Bob wants stew.</think>", "The stew", ", always."])
    reply = await service(scripted).reply(ARIA, TURNS, conversation="c")
    pieces = reply.__aiter__()
    assert await anext(pieces) == "The stew"
    assert reply.reasoning == "Bob wants stew."
    await reply.aclose()


async def test_a_stop_inside_the_thinking_does_not_end_the_reply(scripted: ScriptedBackend) -> None:
    scripted.queue(["<think>Maybe\n[Bob]: would say more?</think>", "The stew.\n[Bob]: I'll take two!"])
    reply = await service(scripted).reply(ARIA, TURNS, conversation="c")
    assert await reply.collect() == "The stew."


async def test_a_reply_that_is_only_thinking_is_retried_then_empty(scripted: ScriptedBackend) -> None:
    scripted.queue(["<think>Hmm.</think>"], ["<think>Still nothing.</think>"])
    reply = await service(scripted).reply(ARIA, TURNS, conversation="c")
    assert await reply.collect() == ""
    assert len(scripted.requests) == 2  # one retry, as for any empty reply


async def test_a_template_that_opens_thinking_shows_only_the_answer() -> None:
    backend = TemplatedBackend(
        real_template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"),
        [["Bob asks about food.\n", "</think>\n\n[Aria]: ", "The stew, always."]],
    )
    reply = await service(backend).reply(ARIA, TURNS, conversation="c")
    assert await reply.collect() == "The stew, always."
    assert reply.reasoning == "Bob asks about food."
    assert backend.requests[0].prompt.endswith("<｜Assistant｜><think>\n")


async def test_a_reasoning_model_is_sent_only_its_turn_end_stops() -> None:
    backend = TemplatedBackend(real_template("Qwen-Qwen3-0.6B.jinja"), [["<think>x</think>Hi."]])
    reply = await service(backend).reply(ARIA, TURNS, conversation="c")
    await reply.collect()
    assert backend.requests[0].stops == ("<|im_end|>", "<|im_start|>user")
    assert "\n[Bob]:" in reply.prompt.stops  # still enforced, on the answer


async def test_the_characters_past_thinking_is_not_in_the_next_prompt(scripted: ScriptedBackend) -> None:
    turns = [*TURNS, Turn("Aria", "<think>He always asks.</think>The stew.", "3", "character"), Turn("Bob", "Again?", "4")]
    reply = await service(scripted).reply(ARIA, turns, conversation="c")
    await reply.collect()
    assert "He always asks" not in scripted.requests[0].prompt
    assert "[Aria]: The stew.\n" in scripted.requests[0].prompt


@pytest.fixture
async def thinking_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reasoning=["Bob wants ", "stew."], reply=["The stew", ", always."]) as server:
        yield server


async def test_a_servers_separate_reasoning_content_is_kept_out_of_the_reply(thinking_server: FakeOpenAIServer) -> None:
    backend = http_backend("openai", thinking_server.url, mode="chat", retries=0)
    try:
        reply = await service(backend).reply(ARIA, TURNS, conversation="c")
        assert await reply.collect() == "The stew, always."
        assert reply.reasoning == "Bob wants stew."
    finally:
        await backend.aclose()
