"""The official ``openai`` Python client against ``serve``'s characters: any OpenAI client works.

The client is the real PyPI package (the test extra installs it); the server is real,
on 127.0.0.1, with the real ChatService and the bundled characters over a scripted
backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from bot.cards.library import CharacterLibrary
from bot.chat import ChatService
from bot.config import parse_config
from bot.serve import Characters, start_server
from bot.testing import ScriptedBackend

TOKEN = "client-token"


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend([["Well, look", " what the rain", " blew in!", "\n[Ann]:", " no"]])


@pytest.fixture
async def client(backend: ScriptedBackend, characters_dir: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    library = CharacterLibrary(characters_dir)
    library.load()
    config = parse_config({})
    characters = Characters(ChatService(backend, config), library, config, watch=0)
    running = await start_server(backend, port=0, token=TOKEN, characters=characters)
    api = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key=TOKEN, max_retries=0, timeout=10)
    yield api
    await api.close()
    await running.close()


async def test_the_client_lists_the_characters_as_models(client):
    models = [m.id async for m in client.models.list()]

    assert {"Aria", "Captain Brass", "Professor Quill"} <= set(models)


async def test_the_client_gets_a_characters_reply(client, backend):
    completion = await client.chat.completions.create(
        model="Aria", messages=[{"role": "user", "name": "Ann", "content": "Evening!"}], user="ann-1"
    )

    assert completion.choices[0].message.content == "Well, look what the rain blew in!"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert backend.requests[0].conversation == "serve:ann-1"


async def test_the_client_streams_a_characters_reply(client):
    stream = await client.chat.completions.create(
        model="Aria", messages=[{"role": "user", "content": "Evening!"}], stream=True
    )

    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "Well, look what the rain blew in!"


async def test_the_client_raises_not_found_for_an_unknown_character(client):
    with pytest.raises(openai.NotFoundError, match="Aria"):
        await client.chat.completions.create(model="Nobody", messages=[{"role": "user", "content": "hi"}])


async def test_the_client_with_a_wrong_key_is_refused(client):
    wrong = client.with_options(api_key="wrong")

    with pytest.raises(openai.AuthenticationError):
        await wrong.chat.completions.create(model="Aria", messages=[{"role": "user", "content": "hi"}])
