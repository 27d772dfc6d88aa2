"""The ollama backend against a fake Ollama."""

from __future__ import annotations

import pytest

from bot.backends.base import Sampling
from bot.backends.ollama import MAX_AUTO_CONTEXT, OllamaBackend
from bot.errors import BackendError, BackendHTTPError, BackendProtocolError, BackendUnavailable
from tests.fakes.ollama import FakeOllamaServer
from tests.fakes.server import Misbehaviour
from tests.fakes.streams import fake_and_backend, http_backend, reply


def make(url: str, **fields: object) -> OllamaBackend:
    fields.setdefault("model", "llama3")
    return http_backend("ollama", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(FakeOllamaServer, make)


async def test_stream_yields_the_text_then_ollamas_counters_as_timings(server, backend):
    text, final = await reply(backend)

    assert text == "Hello there, friend."
    assert final.timings.generated_tokens == 5
    assert final.timings.generation_seconds == pytest.approx(0.06)
    assert final.timings.finish_reason == "stop"


async def test_request_is_raw_with_keep_alive_stops_and_options(server):
    backend = make(server.url, n_ctx=4096, keep_alive="1h")
    try:
        await reply(backend, "[Ann]: hi\n[Bot]:", stops=("\n[",), max_tokens=30, sampling=Sampling(top_k=5, seed=9))
    finally:
        await backend.aclose()

    sent = server.last("/api/generate").body
    assert (sent["model"], sent["prompt"], sent["raw"], sent["stream"], sent["keep_alive"]) == (
        "llama3", "[Ann]: hi\n[Bot]:", True, True, "1h"
    )
    options = sent["options"]
    assert (options["num_ctx"], options["num_predict"], options["stop"]) == (4096, 30, ["\n["])
    assert (options["top_k"], options["seed"]) == (5, 9)


async def test_long_prompt_is_never_silently_truncated_to_ollamas_default(server, backend):
    server.modelfile_num_ctx = 8192
    long_prompt = " ".join(f"w{i}" for i in range(3000))  # beyond Ollama's 2048-token default

    await reply(backend, long_prompt)

    assert server.last("/api/generate").body["options"]["num_ctx"] == 8192
    assert server.truncated == []


async def test_context_comes_from_the_modelfile_num_ctx(server, backend):
    server.modelfile_num_ctx = 6144

    assert await backend.context_size() == 6144


async def test_context_from_the_trained_length_is_capped(server, backend):
    assert await backend.context_size() == MAX_AUTO_CONTEXT


async def test_small_trained_context_is_used_as_it_is(server, backend):
    server.trained_context = 4096

    assert await backend.context_size() == 4096


async def test_unknown_model_raises_with_ollamas_message(server):
    backend = make(server.url, model="mistral", retries=0, n_ctx=2048)
    try:
        with pytest.raises(BackendHTTPError, match="not found, try pulling it first") as caught:
            await reply(backend)
    finally:
        await backend.aclose()
    assert caught.value.status == 404


async def test_health_tells_to_pull_a_missing_model(server):
    backend = make(server.url, model="mistral")
    try:
        health = await backend.health()
    finally:
        await backend.aclose()

    assert not health.ok
    assert "ollama pull mistral" in health.detail


async def test_health_accepts_the_latest_tag_implicitly(server, backend):
    health = await backend.health()

    assert health.ok and health.model == "llama3"


async def test_error_line_mid_stream_is_raised(server, backend):
    server.error_mid_stream = "an error was encountered while running the model"

    with pytest.raises(BackendHTTPError, match="an error was encountered"):
        await reply(backend)


async def test_busy_server_raises_unavailable(server, backend):
    server.fail_next = 1

    with pytest.raises(BackendUnavailable, match="server busy"):
        await reply(backend)


async def test_stream_cut_mid_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.CUT_MID_LINE

    with pytest.raises(BackendProtocolError, match="malformed JSON"):
        await reply(backend)


async def test_garbage_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.GARBAGE

    with pytest.raises(BackendProtocolError, match="malformed JSON"):
        await reply(backend)


async def test_stream_without_done_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.NO_FINAL

    with pytest.raises(BackendProtocolError, match="without the server's final message"):
        await reply(backend)


async def test_load_model_switches_to_a_pulled_model_and_loads_it(server, backend):
    info = await backend.load_model("gemma3:270m")

    assert info.name == "gemma3:270m"
    assert server.loaded == ["gemma3:270m"]
    await reply(backend)
    assert server.last("/api/generate").body["model"] == "gemma3:270m"


async def test_load_model_refuses_a_model_that_is_not_pulled(server, backend):
    with pytest.raises(BackendError, match="ollama pull qwen"):
        await backend.load_model("qwen")


async def test_model_info_lists_pulled_models(server, backend):
    info = await backend.model_info()

    assert info.available == ("llama3:latest", "gemma3:270m")
    assert info.details["parameter_size"] == "8B"
