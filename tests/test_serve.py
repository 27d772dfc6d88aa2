"""``serve``: the HTTP routes, auth, stops, errors and disconnects, over a real socket.

The backend behind it is scripted here (fast); tests/test_serve_real.py puts the
embedded model behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.backends.api_host import ApiHostBackend
from bot.backends.base import GenerationRequest
from bot.backends.openai import OpenAIBackend
from bot.config import ApiHostConfig, OpenAIConfig
from bot.errors import BackendHTTPError, BackendUnavailable, ContextOverflow
from bot.serve import RunningServer, messages_to_prompt, serve, start_server
from bot.testing import ScriptedBackend
from tests.fakes.backend import FlakyBackend
from tests.fakes.server import free_port
from tests.fakes.streams import reply

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend([["Hi", " there", "\n[", "Bob]:", " no"]])


@pytest.fixture
async def server(backend: ScriptedBackend) -> AsyncIterator[RunningServer]:
    running = await start_server(backend, port=0, token=TOKEN)
    yield running
    await running.close()


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


def sse_data(body: str) -> list[str]:
    return [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]


# --------------------------------------------------------------------------- auth


async def test_requests_without_the_bearer_token_get_401(http):
    response = await http.post("/v1/completions", json={"prompt": "x"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_requests_with_a_wrong_token_get_401(http):
    response = await http.get("/v1/models", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401


async def test_health_is_public_but_says_little_without_the_token(http):
    public = (await http.get("/health")).json()
    private = (await http.get("/health", headers=AUTH)).json()

    assert public == {"status": "ok"}
    assert private["model"] == "scripted" and private["n_ctx"] == 4096


async def test_api_route_takes_the_token_from_the_body(http):
    ok = await http.post("/api", json={"token": TOKEN, "task": "text_generation", "inputs": "hi"})
    refused = await http.post("/api", json={"token": "nope", "task": "text_generation", "inputs": "hi"})

    assert ok.status_code == 200
    assert refused.status_code == 401


async def test_start_without_a_token_generates_one_and_logs_it_once(backend, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.serve"):
        running = await start_server(backend, port=0)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            response = await client.get("/v1/models", headers={"Authorization": f"Bearer {running.token}"})
    finally:
        await running.close()

    assert len(running.token) >= 24
    assert response.status_code == 200
    assert [r.getMessage().count(running.token) for r in caplog.records] == [1]


async def test_server_binds_loopback_by_default(backend):
    running = await start_server(backend, port=0, token=TOKEN)
    try:
        assert running.url.startswith("http://127.0.0.1:")
    finally:
        await running.close()


async def test_serve_runs_until_cancelled_then_stops_listening(backend):
    port = free_port()
    task = asyncio.create_task(serve(backend, port=port, token=TOKEN))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(200):
            try:
                await client.get("/health")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            await client.get("/health")


# --------------------------------------------------------------------------- OpenAI routes


async def test_models_lists_the_served_model_with_its_context(http):
    data = (await http.get("/v1/models", headers=AUTH)).json()["data"]

    assert [(m["id"], m["n_ctx"]) for m in data] == [("scripted", 4096)]


async def test_completion_is_cut_at_the_stop_even_when_the_backend_ignores_it(http, backend):
    response = await http.post("/v1/completions", headers=AUTH, json={"prompt": "[Ann]: hi\n[Bot]:", "stop": ["\n[Bob]:"]})

    choice = response.json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("Hi there", "stop")
    assert backend.requests[0].stops == ("\n[Bob]:",)


async def test_completion_request_fields_reach_the_backend(http, backend):
    await http.post(
        "/v1/completions",
        headers=AUTH,
        json={"prompt": "p", "max_tokens": 7, "temperature": 0.2, "top_k": 3, "repetition_penalty": 1.3, "seed": 4},
    )

    request = backend.requests[0]
    assert (request.prompt, request.max_tokens) == ("p", 7)
    s = request.sampling
    assert (s.temperature, s.top_k, s.repeat_penalty, s.seed) == (0.2, 3, 1.3, 4)


async def test_streamed_completion_sends_chunks_then_finish_then_done(http):
    response = await http.post(
        "/v1/completions", headers=AUTH, json={"prompt": "x", "stop": "\n[Bob]:", "stream": True}
    )

    events = sse_data(response.text)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hi there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "text_completion" for c in chunks)


async def test_chat_messages_become_a_plain_transcript(http, backend):
    messages = [
        {"role": "system", "content": "You are Bot."},
        {"role": "user", "content": "[Ann]: hi"},
        {"role": "user", "name": "Zed", "content": "me too"},
    ]

    response = await http.post("/v1/chat/completions", headers=AUTH, json={"messages": messages, "stop": ["\n[Bob]:"]})

    assert backend.requests[0].prompt == "You are Bot.\n\n[Ann]: hi\nZed: me too\n"
    assert response.json()["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}


async def test_streamed_chat_starts_with_the_assistant_role(http):
    response = await http.post(
        "/v1/chat/completions", headers=AUTH, json={"messages": [{"role": "user", "content": "hi"}], "stream": True}
    )

    chunks = [json.loads(e) for e in sse_data(response.text)[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["object"] == "chat.completion.chunk"


async def test_invalid_request_gets_400_naming_the_parameter(http):
    response = await http.post("/v1/completions", headers=AUTH, json={"prompt": "x", "max_tokens": 0})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_tokens"


async def test_context_overflow_is_a_400_with_openais_code(backend, http):
    backend.replies.clear()
    backend.queue(ContextOverflow("prompt is 5000 tokens but the context holds 4096"))

    response = await http.post("/v1/completions", headers=AUTH, json={"prompt": "x"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_client_leaving_mid_stream_closes_the_backend_stream():
    flaky = FlakyBackend(pieces=["x"] * 200, delay=0.01)
    running = await start_server(flaky, port=0, token=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            async with client.stream("POST", "/v1/completions", headers=AUTH, json={"prompt": "p", "stream": True}) as r:
                async for _ in r.aiter_lines():
                    break
        for _ in range(500):
            if flaky.closed_early:
                break
            await asyncio.sleep(0.01)
    finally:
        await running.close()

    assert flaky.closed_early == 1
    assert flaky.completed == 0


# --------------------------------------------------------------------------- api_host route


async def test_api_route_answers_in_answer_content_with_stops_applied(http):
    response = await http.post(
        "/api",
        json={"token": TOKEN, "task": "text_generation", "inputs": "x", "parameters": {"max_tokens": 9, "stop": ["\n["]}},
    )

    assert response.json()["answer"] == {"content": "Hi there"}


async def test_api_route_turns_message_inputs_into_a_transcript(http, backend):
    inputs = [{"role": "system", "content": "Be Bot."}, {"role": "user", "content": "hello"}]

    await http.post("/api", json={"token": TOKEN, "task": "text_generation", "inputs": inputs})

    assert backend.requests[0].prompt == "Be Bot.\n\nhello\n"


async def test_api_route_refuses_other_tasks(http):
    response = await http.post("/api", json={"token": TOKEN, "task": "image_generation", "inputs": "x"})

    assert response.status_code == 400
    assert "image_generation" in response.json()["error"]


# --------------------------------------------------------------------------- Troupe's own backends against serve


async def test_openai_backend_streams_from_serve(server):
    client = OpenAIBackend(OpenAIConfig(type="openai", url=server.url, api_key=TOKEN, retries=0))
    try:
        text, final = await reply(client, stops=("\n[Bob]:",))
        n_ctx = await client.context_size()
    finally:
        await client.aclose()

    assert text == "Hi there"
    assert final.timings.finish_reason == "stop"
    assert n_ctx == 4096


async def test_openai_backend_sees_a_context_overflow_from_serve(server, backend):
    backend.replies.clear()
    backend.queue(ContextOverflow("too long"))
    client = OpenAIBackend(OpenAIConfig(type="openai", url=server.url, api_key=TOKEN, retries=0, model="m"))
    try:
        with pytest.raises(ContextOverflow):
            await reply(client)
    finally:
        await client.aclose()


async def test_backend_failure_mid_stream_reaches_the_client_as_an_error(backend):
    flaky = FlakyBackend(pieces=["a", "b", "c"], fail_after=2)
    running = await start_server(flaky, port=0, token=TOKEN)
    client = OpenAIBackend(OpenAIConfig(type="openai", url=running.url, api_key=TOKEN, retries=0, model="m"))
    seen = []
    try:
        with pytest.raises(BackendHTTPError, match="failure mid-reply"):
            async for chunk in client.stream(GenerationRequest(prompt="p")):
                seen.append(chunk.text)
    finally:
        await client.aclose()
        await running.close()

    assert "".join(seen) == "ab"


async def test_unavailable_backend_is_a_503_the_client_reports_as_unavailable(backend, server):
    backend.replies.clear()
    backend.queue(BackendUnavailable("model still loading"))
    client = OpenAIBackend(OpenAIConfig(type="openai", url=server.url, api_key=TOKEN, retries=0, model="m"))
    try:
        with pytest.raises(BackendUnavailable, match="model still loading"):
            await reply(client)
    finally:
        await client.aclose()


async def test_api_host_backend_gets_its_answer_from_serve(server):
    client = ApiHostBackend(ApiHostConfig(type="api_host", url=server.url, token=TOKEN, retries=0))
    try:
        text, _ = await reply(client)
        health = await client.health()
    finally:
        await client.aclose()

    assert text == "Hi there\n[Bob]: no"  # the protocol carries no stops; the bot cuts them
    assert health.ok and health.model == "scripted"


# --------------------------------------------------------------------------- helpers


async def test_raw_completion_keeps_the_models_whitespace_exactly():
    spaced = ScriptedBackend([["  Hi", " there \n", "\n[Bo", "b]: no"]])
    running = await start_server(spaced, port=0, token=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            response = await client.post("/v1/completions", headers=AUTH, json={"prompt": "x", "stop": ["\n[Bob]:"]})
    finally:
        await running.close()

    assert response.json()["choices"][0]["text"] == "  Hi there \n"


async def test_raw_completion_releases_a_held_back_tail_that_was_no_stop():
    tail = ScriptedBackend([["Hi", "\n[Bo"]])
    running = await start_server(tail, port=0, token=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            response = await client.post("/v1/completions", headers=AUTH, json={"prompt": "x", "stop": ["\n[Bob]:"]})
    finally:
        await running.close()

    assert response.json()["choices"][0]["text"] == "Hi\n[Bo"


def test_messages_ending_with_the_assistant_are_continued_without_a_newline():
    prompt = messages_to_prompt([{"role": "user", "content": "[Ann]: hi"}, {"role": "assistant", "content": "[Bot]:"}])

    assert prompt == "[Ann]: hi\n[Bot]:"
