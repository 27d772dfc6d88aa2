"""The kobold backend against a fake KoboldCpp."""

from __future__ import annotations

import asyncio

import pytest

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.kobold import KoboldBackend
from bot.errors import BackendProtocolError, BackendUnavailable
from tests.fakes.kobold import FakeKoboldServer
from tests.fakes.server import Misbehaviour
from tests.fakes.streams import fake_and_backend, collect, http_backend, reply


def make(url: str, **fields: object) -> KoboldBackend:
    return http_backend("kobold", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(FakeKoboldServer, make)


async def test_stream_yields_the_tokens_then_the_finish_reason(server, backend):
    text, final = await reply(backend)

    assert text == "Hello there, friend."
    assert final.timings.finish_reason == "stop"
    assert final.timings.generated_tokens == 5


async def test_request_sends_stop_sequence_trim_stop_genkey_and_the_true_context(server, backend):
    server.n_ctx = 12288
    await reply(backend, stops=("\n[Ann]:",), max_tokens=64, sampling=Sampling(repeat_penalty=1.15, seed=3))

    sent = server.last("/api/extra/generate/stream").body
    assert sent["stop_sequence"] == ["\n[Ann]:"]
    assert sent["trim_stop"] is True
    assert sent["genkey"].startswith("KCPP")
    assert (sent["max_length"], sent["max_context_length"]) == (64, 12288)
    assert (sent["rep_pen"], sent["sampler_seed"]) == (1.15, 3)


async def test_each_generation_gets_its_own_genkey(server, backend):
    await reply(backend)
    await reply(backend)

    first, second = (body["genkey"] for body in server.bodies("/api/extra/generate/stream"))
    assert first != second


async def test_server_trims_at_the_stop_sequence(server, backend):
    text, _ = await reply(backend, stops=(",",))

    assert text == "Hello there"


async def test_length_limit_is_reported(server, backend):
    _, final = await reply(backend, max_tokens=2)

    assert final.timings.finish_reason == "length"


async def test_closing_the_stream_early_aborts_with_the_genkey(server, backend):
    server.reply = [f" w{i}" for i in range(100)]
    server.piece_delay = 0.01
    stream = backend.stream(GenerationRequest(prompt="hi"))
    await anext(stream)

    await stream.aclose()

    genkey = server.last("/api/extra/generate/stream").body["genkey"]
    assert server.aborted_keys == [genkey]


async def test_abort_ends_the_stream_as_aborted(server, backend):
    server.reply = [f" w{i}" for i in range(100)]
    server.piece_delay = 0.01
    stream = backend.stream(GenerationRequest(prompt="hi", conversation="chan"))
    await anext(stream)

    await backend.abort("chan")
    _, final = await asyncio.wait_for(collect(stream), 5)

    assert final.timings.finish_reason == "abort"
    assert server.aborted_keys == [server.last("/api/extra/generate/stream").body["genkey"]]


async def test_busy_server_raises_unavailable_with_koboldcpps_message(server, backend):
    server.busy = True

    with pytest.raises(BackendUnavailable, match="Server is busy; please try again later"):
        await reply(backend)


async def test_busy_server_is_retried_before_any_text(server):
    server.fail_next = 1
    backend = make(server.url, retries=1)
    try:
        text, _ = await reply(backend)
    finally:
        await backend.aclose()

    assert text == "Hello there, friend."


async def test_stream_ending_without_a_finish_reason_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.NO_FINAL

    with pytest.raises(BackendProtocolError, match="before KoboldCpp said it was finished"):
        await reply(backend)


async def test_stream_cut_mid_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.CUT_MID_LINE

    with pytest.raises(BackendProtocolError, match=r"cut short\?"):
        await reply(backend)


async def test_garbage_in_the_stream_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.GARBAGE

    with pytest.raises(BackendProtocolError, match="malformed JSON"):
        await reply(backend)


async def test_count_tokens_uses_tokencount(server, backend):
    assert await backend.count_tokens(["Hello there, friend.", ""]) == [5, 0]
    assert server.last("/api/extra/tokencount").body == {"prompt": "Hello there, friend."}


async def test_context_size_is_the_true_max_context_length(server, backend):
    server.n_ctx = 16384

    assert await backend.context_size() == 16384


async def test_health_reports_the_loaded_model(server, backend):
    health = await backend.health()

    assert health.ok and health.model == "koboldcpp/fake-model"


async def test_health_is_not_ok_without_a_text_model(server, backend):
    server.model = "ReadOnly"

    assert not (await backend.health()).ok
