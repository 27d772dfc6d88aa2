"""The ooba backend against a fake text-generation-webui (openai extension)."""

from __future__ import annotations

import asyncio
import functools

import pytest

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.ooba import OobaBackend
from bot.errors import BackendHTTPError
from tests.fakes.openai import FakeOpenAIServer
from tests.fakes.streams import fake_and_backend, collect, http_backend, reply


def make(url: str, **fields: object) -> OobaBackend:
    return http_backend("ooba", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(functools.partial(FakeOpenAIServer, ooba=True), make)


async def test_generation_uses_the_webuis_sampler_names(server, backend):
    text, _ = await reply(backend, sampling=Sampling(top_k=30, min_p=0.1, repeat_penalty=1.2, repeat_last_n=256))

    sent = server.last("/v1/completions").body
    assert text == "Hello there, friend."
    assert (sent["top_k"], sent["min_p"], sent["repetition_penalty"], sent["repetition_penalty_range"]) == (30, 0.1, 1.2, 256)
    assert "repeat_penalty" not in sent and "model" not in sent


async def test_configured_context_is_sent_as_truncation_length(server):
    backend = make(server.url, n_ctx=6144)
    try:
        await reply(backend)
    finally:
        await backend.aclose()

    assert server.last("/v1/completions").body["truncation_length"] == 6144


async def test_count_tokens_uses_the_internal_token_count(server, backend):
    assert await backend.count_tokens(["Hello there, friend.", ""]) == [5, 0]
    assert server.last("/v1/internal/token-count").body == {"text": "Hello there, friend."}


async def test_model_info_reports_the_loaded_model_and_those_on_disk(server, backend):
    info = await backend.model_info()

    assert info.name == "fake-model-7B"
    assert info.available == ("fake-model-7B", "other-model-13B")
    assert info.details["loader"] == "llama.cpp"


async def test_load_model_switches_the_loaded_model(server, backend):
    info = await backend.load_model("other-model-13B")

    assert info.name == "other-model-13B"
    assert server.last("/v1/internal/model/load").body == {"model_name": "other-model-13B"}


async def test_loading_an_unknown_model_raises_with_the_webuis_message(server, backend):
    with pytest.raises(BackendHTTPError, match="Failed to load the model"):
        await backend.load_model("nope")


async def test_health_is_not_ok_without_a_loaded_model(server, backend):
    server.ooba_model = "None"

    health = await backend.health()

    assert not health.ok
    assert "no model loaded" in health.detail


async def test_closing_the_stream_early_calls_stop_generation(server, backend):
    server.reply = [f" w{i}" for i in range(100)]
    server.piece_delay = 0.01
    stream = backend.stream(GenerationRequest(prompt="hi"))
    await anext(stream)

    await stream.aclose()

    assert server.stop_requests == 1


async def test_abort_stops_the_generation_on_the_server(server, backend):
    server.reply = [f" w{i}" for i in range(100)]
    server.piece_delay = 0.01
    stream = backend.stream(GenerationRequest(prompt="hi", conversation="c"))
    await anext(stream)

    await backend.abort("c")
    _, final = await asyncio.wait_for(collect(stream), 5)

    assert server.stop_requests == 1
    assert final.timings.finish_reason == "abort"
    assert server.pieces_sent < 100


async def test_invalid_request_error_keeps_fastapis_message(server):
    backend = make(server.url, retries=0, extra_body={"not_a_field": 1})
    try:
        with pytest.raises(BackendHTTPError, match="unknown field 'not_a_field'") as caught:
            await reply(backend)
    finally:
        await backend.aclose()
    assert caught.value.status == 422
