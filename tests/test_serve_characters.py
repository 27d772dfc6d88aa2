"""``serve``'s character endpoint: a Troupe character behind the OpenAI chat API.

A real server on 127.0.0.1 with the real ChatService and the bundled characters
folder; the backend is scripted (it ignores stop strings, as some servers do, so the
service's own cutting is what is tested). tests/test_serve_real.py puts the
embedded model behind it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.cards.library import CharacterLibrary
from bot.chat import ChatService
from bot.config import parse_config
from bot.errors import BackendUnavailable
from bot.serve import Characters, RunningServer, start_server
from bot.testing import ScriptedBackend
from tests.fakes.backend import FlakyBackend

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHAT = "/v1/chat/completions"


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend([["Hello", " there, love.", "\n[Ann]:", " not me"]])


@pytest.fixture
def library(characters_dir: Path) -> CharacterLibrary:
    library = CharacterLibrary(characters_dir)
    library.load()
    return library


@pytest.fixture
async def server(backend: ScriptedBackend, library: CharacterLibrary) -> AsyncIterator[RunningServer]:
    config = parse_config({})
    characters = Characters(ChatService(backend, config), library, config, watch=0)
    running = await start_server(backend, port=0, token=TOKEN, characters=characters)
    yield running
    await running.close()


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=AUTH) as client:
        yield client


def ask(*messages: dict, **fields) -> dict:
    return {"model": "Aria", "messages": list(messages), **fields}


def user(text: str, name: str | None = None) -> dict:
    return {"role": "user", "content": text, **({"name": name} if name else {})}


def events(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


# --------------------------------------------------------------------------- listing and finding


async def test_models_lists_the_raw_model_first_then_every_character(http):
    data = (await http.get("/v1/models")).json()["data"]

    assert [m["id"] for m in data] == ["scripted", "Aria", "Captain Brass", "Professor Quill"]


async def test_a_character_is_found_by_its_name_in_any_case(http):
    response = await http.post(CHAT, json=ask(user("hi"), model="aRIA"))

    assert response.status_code == 200
    assert response.json()["model"] == "Aria"


async def test_an_unknown_model_is_a_404_naming_the_characters(http):
    response = await http.post(CHAT, json=ask(user("hi"), model="Nobody"))

    error = response.json()["error"]
    assert response.status_code == 404
    assert (error["code"], error["param"], error["type"]) == (
        "model_not_found",
        "model",
        "invalid_request_error",
    )
    assert all(name in error["message"] for name in ("'Nobody'", "Aria", "Captain Brass", "Professor Quill"))


async def test_the_raw_model_still_answers_by_its_own_name(http, backend):
    await http.post(CHAT, json=ask(user("hi", "Ann"), model="scripted"))

    assert backend.requests[0].prompt == "Ann: hi\n"


async def test_a_chat_without_a_model_goes_to_the_raw_model(http, backend):
    await http.post(CHAT, json={"messages": [user("hi")]})

    assert backend.requests[0].prompt == "hi\n"


async def test_the_character_endpoint_needs_the_bearer_token(server):
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(CHAT, json=ask(user("hi")))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


# --------------------------------------------------------------------------- the conversation


async def test_the_prompt_is_the_characters_card_and_the_conversation(http, backend):
    await http.post(CHAT, json=ask(user("Evening!", "Ann")))

    prompt = backend.requests[0].prompt
    assert "Aria keeps the Copper Kettle" in prompt
    assert prompt.endswith("[Ann]: Evening!\n[Aria]:")


async def test_a_user_message_without_a_name_is_spoken_by_user(http, backend):
    await http.post(CHAT, json=ask(user("Evening!")))

    assert backend.requests[0].prompt.endswith("[user]: Evening!\n[Aria]:")


async def test_assistant_messages_are_the_characters_own_turns(http, backend):
    await http.post(
        CHAT,
        json=ask(user("Stew?", "Ann"), {"role": "assistant", "content": "Always."}, user("Good.", "Ann")),
    )

    assert "[Ann]: Stew?\n[Aria]: Always.\n[Ann]: Good.\n[Aria]:" in backend.requests[0].prompt


async def test_system_messages_are_out_of_character_notes_in_place(http, backend):
    await http.post(
        CHAT, json=ask(user("Hi", "Ann"), {"role": "system", "content": "Bob joins."}, user("Yo", "Bob"))
    )

    assert "[Ann]: Hi\n[System]: Bob joins.\n[Bob]: Yo\n[Aria]:" in backend.requests[0].prompt


async def test_the_one_person_speaking_is_the_cards_user(http, backend):
    await http.post(CHAT, json=ask(user("Hi", "Zed"), user("Still me", "Zed")))

    assert "[Zed]: What's good tonight?" in backend.requests[0].prompt  # {{user}} in the card's examples


async def test_a_trailing_assistant_message_is_continued(http, backend):
    response = await http.post(
        CHAT, json=ask(user("Tell me", "Ann"), {"role": "assistant", "content": "Once upon"})
    )

    assert backend.requests[0].prompt.endswith("[Ann]: Tell me\n[Aria]: Once upon")
    assert response.json()["choices"][0]["message"]["content"] == "Hello there, love."


async def test_the_reply_is_cut_at_the_next_speaker(http):
    response = await http.post(CHAT, json=ask(user("hi", "Ann")))

    choice = response.json()["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there, love."}
    assert choice["finish_reason"] == "stop"


async def test_the_clients_own_stop_strings_cut_the_reply_too(http):
    response = await http.post(CHAT, json=ask(user("hi", "Ann"), stop=[", lo"]))

    assert response.json()["choices"][0]["message"]["content"] == "Hello there"


async def test_request_sampling_overrides_the_characters_and_keeps_the_rest(http, backend):
    await http.post(CHAT, json=ask(user("hi"), temperature=0.1, max_tokens=9))

    request = backend.requests[0]
    assert (request.sampling.temperature, request.max_tokens) == (0.1, 9)
    assert request.sampling.min_p == 0.05  # the default preset's, untouched


async def test_the_answer_carries_usage(http):
    body = (await http.post(CHAT, json=ask(user("hi")))).json()

    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


# --------------------------------------------------------------------------- conversation state


async def test_the_conversation_header_names_a_serve_conversation(http, backend):
    await http.post(CHAT, json=ask(user("hi"), user="u1"), headers={"X-Conversation-Id": "chat-7"})

    assert backend.requests[0].conversation == "serve:chat-7"


async def test_the_user_field_names_the_conversation_without_the_header(http, backend):
    await http.post(CHAT, json=ask(user("hi"), user="u1"))

    assert backend.requests[0].conversation == "serve:u1"


async def test_without_an_id_the_request_keeps_no_conversation_state(http, backend):
    await http.post(CHAT, json=ask(user("hi")))

    assert backend.requests[0].conversation is None


async def test_a_conversation_keeps_its_window_start_across_requests(backend, library):
    config = parse_config({"prompt": {"history_messages": 4}})
    characters = Characters(ChatService(backend, config), library, config, watch=0)
    running = await start_server(backend, port=0, token=TOKEN, characters=characters)
    history = [user(f"message {i}", "Ann") for i in range(8)]
    try:
        async with httpx.AsyncClient(base_url=running.url, headers=AUTH) as client:
            for size in (6, 7, 8):
                await client.post(CHAT, json=ask(*history[:size]), headers={"X-Conversation-Id": "c"})
    finally:
        await running.close()

    firsts = [re.search(r"\[Ann\]: message (\d)", r.prompt).group(1) for r in backend.requests]
    # anchored: a slice dropped at once (how many depends on prompt.drop_fraction), then kept
    assert int(firsts[1]) - int(firsts[0]) >= 2 and firsts[2] == firsts[1], firsts


# --------------------------------------------------------------------------- streaming


async def test_a_streamed_reply_opens_with_the_role_and_ends_with_done(http):
    response = await http.post(CHAT, json=ask(user("hi", "Ann"), stream=True))

    data = events(response.text)
    chunks = [json.loads(d) for d in data[:-1]]
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert data[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "Aria" for c in chunks)


async def test_streamed_deltas_add_up_to_the_cut_reply(http):
    response = await http.post(CHAT, json=ask(user("hi", "Ann"), stream=True))

    chunks = [json.loads(d) for d in events(response.text)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello there, love."


async def test_the_last_streamed_chunk_has_the_finish_reason_and_usage(http):
    response = await http.post(CHAT, json=ask(user("hi", "Ann"), stream=True))

    last = json.loads(events(response.text)[-2])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 4


# --------------------------------------------------------------------------- failures


async def test_an_unreachable_model_is_a_503_with_the_chat_paths_words(http, backend):
    backend.replies.clear()
    backend.queue(BackendUnavailable("connection refused"))

    response = await http.post(CHAT, json=ask(user("hi")))

    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert (
        message.startswith("My model server isn't reachable right now.") and "connection refused" in message
    )


async def test_a_message_without_text_content_is_a_400(http):
    response = await http.post(
        CHAT, json=ask({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


async def test_text_parts_content_is_read_as_one_message(http, backend):
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "Aria"}]

    await http.post(CHAT, json=ask({"role": "user", "name": "Ann", "content": parts}))

    assert backend.requests[0].prompt.endswith("[Ann]: Hello Aria\n[Aria]:")


async def _serve_with(backend, library: CharacterLibrary) -> RunningServer:
    config = parse_config({})
    characters = Characters(ChatService(backend, config), library, config, watch=0)
    return await start_server(backend, port=0, token=TOKEN, characters=characters)


async def test_a_client_leaving_mid_stream_stops_the_generation(library):
    flaky = FlakyBackend(pieces=[f"word{i} " for i in range(300)], delay=0.01)
    running = await _serve_with(flaky, library)
    try:
        async with (
            httpx.AsyncClient(base_url=running.url, headers=AUTH) as client,
            client.stream("POST", CHAT, json=ask(user("hi"), stream=True)) as response,
        ):
            async for _ in response.aiter_lines():
                break
        for _ in range(500):
            if flaky.closed_early:
                break
            await asyncio.sleep(0.01)
    finally:
        await running.close()

    assert (flaky.closed_early, flaky.completed) == (1, 0)


async def test_a_failure_mid_stream_ends_the_stream_with_an_error_event(library):
    flaky = FlakyBackend(pieces=["Hello", " there", " friend"], fail_after=2)
    running = await _serve_with(flaky, library)
    try:
        async with httpx.AsyncClient(base_url=running.url, headers=AUTH) as client:
            response = await client.post(CHAT, json=ask(user("hi"), stream=True))
    finally:
        await running.close()

    data = [json.loads(d) for d in events(response.text)]
    assert response.status_code == 200
    assert "".join(d["choices"][0]["delta"].get("content", "") for d in data[:-1]) == "Hello there"
    assert data[-1]["error"]["message"].startswith("My model failed to answer this time.")


async def test_a_reply_cut_by_the_token_limit_finishes_with_length(library):
    flaky = FlakyBackend(pieces=["Hello", " there"], finish_reason="length")
    running = await _serve_with(flaky, library)
    try:
        async with httpx.AsyncClient(base_url=running.url, headers=AUTH) as client:
            response = await client.post(CHAT, json=ask(user("hi"), max_tokens=2))
    finally:
        await running.close()

    assert response.json()["choices"][0]["finish_reason"] == "length"
