"""The api_host backend against a fake notebook host."""

from __future__ import annotations

import pytest

from bot.backends.api_host import ApiHostBackend
from bot.backends.base import ChatMessage, Sampling
from bot.errors import BackendHTTPError, BackendProtocolError, BackendUnavailable
from tests.fakes.api_host import FakeApiHost
from tests.fakes.server import Misbehaviour
from tests.fakes.streams import fake_and_backend, http_backend, reply


def make(url: str, **fields: object) -> ApiHostBackend:
    fields.setdefault("token", "host-token")
    return http_backend("api_host", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(FakeApiHost, make, repo_id="org/model-GGUF", file_name="model.Q4_K_M.gguf", n_ctx=4096)


async def test_reply_arrives_in_one_piece_then_done(server, backend):
    text, final = await reply(backend)

    assert text == "Hello there, friend."
    assert final.timings.finish_reason == "stop"


async def test_request_follows_the_protocol_field_by_field(server, backend):
    await reply(backend, "[Ann]: hi\n[Bot]:", max_tokens=48, sampling=Sampling(top_k=30, top_p=0.9, temperature=0.7))

    assert server.last("/api").body == {
        "token": "host-token",
        "task": "text_generation",
        "repo_id": "org/model-GGUF",
        "file_name": "model.Q4_K_M.gguf",
        "inputs": "[Ann]: hi\n[Bot]:",
        "parameters": {"max_tokens": 48, "top_k": 30, "top_p": 0.9, "temperature": 0.7},
        "options": {"use_gpu": True, "ctx_length": 4096, "chat_format": None},
    }


async def test_messages_are_sent_as_inputs_when_the_host_applies_a_chat_format(server):
    backend = make(server.url, chat_format="chatml")
    try:
        await reply(backend, messages=(ChatMessage("system", "Be Bot."), ChatMessage("user", "[Ann]: hi")))
    finally:
        await backend.aclose()

    sent = server.last("/api").body
    assert sent["inputs"] == [{"role": "system", "content": "Be Bot."}, {"role": "user", "content": "[Ann]: hi"}]
    assert sent["options"]["chat_format"] == "chatml"


async def test_wrong_token_raises_http_401_with_the_hosts_message(server):
    backend = make(server.url, token="wrong", retries=0)
    try:
        with pytest.raises(BackendHTTPError, match="invalid token") as caught:
            await reply(backend)
    finally:
        await backend.aclose()
    assert caught.value.status == 401


async def test_loading_host_raises_unavailable(server, backend):
    server.loading = True

    with pytest.raises(BackendUnavailable, match="still loading"):
        await reply(backend)


async def test_answer_that_is_not_json_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.GARBAGE

    with pytest.raises(BackendProtocolError, match="502 Bad Gateway"):
        await reply(backend)


async def test_dropped_connection_raises_a_backend_error(server, backend):
    server.misbehave = Misbehaviour.DROP

    with pytest.raises(BackendUnavailable, match="closed the connection"):
        await reply(backend)


async def test_health_of_a_host_without_a_health_route_is_reachable(server, backend):
    health = await backend.health()

    assert health.ok
    assert "no /health route" in health.detail
    assert health.model == "org/model-GGUF/model.Q4_K_M.gguf"


async def test_context_size_is_the_configured_one(server, backend):
    assert await backend.context_size() == 4096
