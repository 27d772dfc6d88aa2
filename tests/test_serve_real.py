"""``serve`` over the embedded model: as a backend of Troupe (bot backend -> serve -> model),
and a character (``model: "Aria"``) answering through the same ChatService as Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.backends.api_host import ApiHostBackend
from bot.backends.base import Sampling
from bot.backends.llama_cpp import LlamaCppBackend
from bot.backends.openai import OpenAIBackend
from bot.cards.library import CharacterLibrary
from bot.chat import ChatService
from bot.config import ApiHostConfig, OpenAIConfig, parse_config
from bot.errors import BackendHTTPError
from bot.prompt.types import Turn
from bot.serve import Characters, RunningServer, start_server
from tests.fakes.streams import reply

pytestmark = pytest.mark.model

TOKEN = "serve-test-token"
PROMPT = "[Ann]: Hello, how are you?\n[Bot]:"
GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


@pytest.fixture
async def served(embedded: LlamaCppBackend) -> AsyncIterator[RunningServer]:
    running = await start_server(embedded, port=0, token=TOKEN)
    yield running
    await running.close()


async def test_openai_backend_streams_the_embedded_model_through_serve_with_stops(served):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=served.url, api_key=TOKEN, retries=0))
    try:
        text, final = await reply(backend, PROMPT, max_tokens=16, sampling=GREEDY, stops=("\n[",))
        n_ctx = await backend.context_size()
    finally:
        await backend.aclose()

    assert text.strip()
    assert "\n[" not in text
    assert final.timings.finish_reason in ("stop", "length")
    assert n_ctx == 2048  # the embedded model's context, reported by serve's /v1/models


async def test_openai_backend_without_the_token_is_refused(served):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=served.url, retries=0, model="any"))
    try:
        with pytest.raises(BackendHTTPError, match="missing or wrong bearer token") as caught:
            await reply(backend, PROMPT, max_tokens=4)
    finally:
        await backend.aclose()

    assert caught.value.status == 401


async def test_api_host_backend_gets_the_embedded_models_answer_through_serve(served):
    backend = ApiHostBackend(ApiHostConfig(type="api_host", url=served.url, token=TOKEN, retries=0, n_ctx=2048))
    try:
        text, _ = await reply(backend, PROMPT, max_tokens=12, sampling=GREEDY)
    finally:
        await backend.aclose()

    assert text.strip()


async def test_api_host_backend_with_a_wrong_token_is_refused(served):
    backend = ApiHostBackend(ApiHostConfig(type="api_host", url=served.url, token="wrong", retries=0))
    try:
        with pytest.raises(BackendHTTPError, match="wrong token") as caught:
            await reply(backend, PROMPT, max_tokens=4)
    finally:
        await backend.aclose()

    assert caught.value.status == 401


# --------------------------------------------------------------------------- a character over the embedded model


@pytest.fixture
async def served_characters(embedded: LlamaCppBackend, characters_dir: Path) -> AsyncIterator[tuple[RunningServer, ChatService]]:
    library = CharacterLibrary(characters_dir)
    library.load()
    config = parse_config({"prompt": {"max_reply_tokens": 24}})
    characters = Characters(ChatService(embedded, config), library, config, watch=0)
    running = await start_server(embedded, port=0, token=TOKEN, characters=characters)
    yield running, ChatService(embedded, config)
    await running.close()


async def test_aria_answers_in_character_the_same_as_the_chat_service(served_characters, characters_dir):
    running, service = served_characters
    greedy = {"temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0, "seed": 1}
    async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "Aria", "messages": [{"role": "user", "name": "Ann", "content": "What's good tonight?"}], **greedy},
        )
    aria = CharacterLibrary(characters_dir)
    aria.load()
    expected = await (
        await service.reply(
            aria.get("Aria"), [Turn("Ann", "What's good tonight?")], user_name="Ann", sampling=Sampling(**greedy)
        )
    ).collect()

    body = response.json()
    assert response.status_code == 200 and body["model"] == "Aria"
    reply = body["choices"][0]["message"]["content"]
    assert reply.strip() and not reply.startswith("[")
    assert reply == expected  # the same reply the Discord and console path gives
