"""The openai backend against a fake OpenAI-compatible server."""

from __future__ import annotations

import logging

import pytest

from bot.backends.base import ChatMessage, Sampling
from bot.backends.openai import OpenAIBackend
from bot.errors import BackendHTTPError, BackendProtocolError, ContextOverflow
from tests.fakes.openai import FakeOpenAIServer
from tests.fakes.server import Misbehaviour, fake_tokenize
from tests.fakes.streams import fake_and_backend, http_backend, reply


def make(url: str, **fields: object) -> OpenAIBackend:
    return http_backend("openai", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(FakeOpenAIServer, make)


async def test_completions_stream_the_text_then_usage_as_timings(server, backend):
    text, final = await reply(backend, "[Ann]: hi\n[Bot]:")

    assert text == "Hello there, friend."
    assert final.timings.prompt_tokens == len(fake_tokenize("[Ann]: hi\n[Bot]:"))
    assert final.timings.generated_tokens == 5
    assert final.timings.finish_reason == "stop"


async def test_completions_request_sends_the_transcript_stops_and_standard_samplers_only(server, backend):
    await reply(backend, "[Ann]: hi\n[Bot]:", stops=("\n[",), max_tokens=40, sampling=Sampling(temperature=0.3, seed=5))

    sent = server.last("/v1/completions").body
    assert sent["prompt"] == "[Ann]: hi\n[Bot]:"
    assert sent["model"] == "fake-model"  # discovered from /v1/models
    assert sent["stop"] == ["\n["]
    assert (sent["max_tokens"], sent["temperature"], sent["seed"], sent["stream"]) == (40, 0.3, 5, True)
    assert not {"top_k", "min_p", "repeat_penalty"} & set(sent)


async def test_extended_samplers_are_sent_when_configured(server):
    server.extended_samplers = True
    backend = make(server.url, extended_samplers=True)
    try:
        await reply(backend, sampling=Sampling(top_k=11, min_p=0.2, repeat_penalty=1.3))
    finally:
        await backend.aclose()

    sent = server.last("/v1/completions").body
    assert (sent["top_k"], sent["min_p"], sent["repeat_penalty"]) == (11, 0.2, 1.3)


async def test_extra_body_is_passed_through_and_overrides(server):
    server.extended_samplers = True
    backend = make(server.url, extra_body={"min_p": 0.07, "temperature": 0.1})
    try:
        await reply(backend)
    finally:
        await backend.aclose()

    sent = server.last("/v1/completions").body
    assert (sent["min_p"], sent["temperature"]) == (0.07, 0.1)


async def test_chat_mode_sends_the_messages_to_chat_completions(server):
    backend = make(server.url, mode="chat")
    messages = (
        ChatMessage("system", "You are Bot."),
        ChatMessage("user", "[Ann]: hi"),
        ChatMessage("assistant", "hello"),
        ChatMessage("user", "[Zed]: and me?"),
    )
    try:
        text, _ = await reply(backend, "ignored transcript", messages=messages, stops=("\n[",))
    finally:
        await backend.aclose()

    sent = server.last("/v1/chat/completions").body
    assert text == "Hello there, friend."
    assert sent["messages"] == [{"role": m.role, "content": m.content} for m in messages]
    assert sent["stop"] == ["\n["]
    assert "prompt" not in sent


async def test_chat_mode_without_messages_sends_the_prompt_as_one_user_message(server):
    backend = make(server.url, mode="chat")
    try:
        await reply(backend, "[Ann]: hi\n[Bot]:")
    finally:
        await backend.aclose()

    assert server.last("/v1/chat/completions").body["messages"] == [{"role": "user", "content": "[Ann]: hi\n[Bot]:"}]


async def test_configured_model_is_sent_without_listing_models(server):
    backend = make(server.url, model="my-model")
    try:
        await reply(backend)
    finally:
        await backend.aclose()

    assert server.last("/v1/completions").body["model"] == "my-model"
    assert not server.bodies("/v1/models")


async def test_api_key_is_sent_as_bearer(server):
    server.api_key = "sk-test"
    backend = make(server.url, api_key="sk-test")
    try:
        text, _ = await reply(backend)
    finally:
        await backend.aclose()

    assert text == "Hello there, friend."
    assert server.last("/v1/completions").headers["Authorization"] == "Bearer sk-test"


async def test_missing_api_key_raises_http_401_with_the_server_message(server, backend):
    server.api_key = "sk-test"

    with pytest.raises(BackendHTTPError, match="Incorrect API key provided") as caught:
        await reply(backend)
    assert caught.value.status == 401


async def test_context_length_exceeded_raises_context_overflow(server, backend):
    server.n_ctx = 5

    with pytest.raises(ContextOverflow, match="maximum context length is 5 tokens"):
        await reply(backend, "one two three four five six seven")


async def test_stream_without_done_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.NO_FINAL

    with pytest.raises(BackendProtocolError, match="without the server's final message"):
        await reply(backend)


async def test_stream_cut_mid_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.CUT_MID_LINE

    with pytest.raises(BackendProtocolError, match=r"cut short\?"):
        await reply(backend)


async def test_garbage_in_the_stream_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.GARBAGE

    with pytest.raises(BackendProtocolError, match="Bad Gateway"):
        await reply(backend)


async def test_context_size_comes_from_the_model_list_when_the_server_gives_it(server, backend):
    server.models = [{"id": "fake-model", "max_model_len": 16384}]

    assert await backend.context_size() == 16384


async def test_context_size_defaults_safely_with_a_warning_when_unknown(server, backend, caplog):
    with caplog.at_level(logging.WARNING):
        size = await backend.context_size()

    assert size == 2048
    assert any("set backend.n_ctx" in r.getMessage() for r in caplog.records)


async def test_health_reports_a_configured_model_the_server_does_not_have(server):
    backend = make(server.url, model="absent-model")
    try:
        health = await backend.health()
    finally:
        await backend.aclose()

    assert not health.ok
    assert "absent-model" in health.detail and "fake-model" in health.detail


async def test_model_info_lists_the_servers_models(server, backend):
    server.models = [{"id": "a"}, {"id": "b"}]

    info = await backend.model_info()

    assert (info.name, info.available) == ("a", ("a", "b"))


async def test_count_tokens_uses_llama_cpp_python_extras_when_present(server):
    server.tokenize_extras = True
    await server.stop()
    await server.start()
    backend = make(server.url)
    try:
        counts = await backend.count_tokens(["Hello there, friend.", ""])
    finally:
        await backend.aclose()

    assert counts == [5, 0]
    assert backend.capabilities.tokenize
    assert server.last("/extras/tokenize/count").body == {"input": "Hello there, friend.", "model": "fake-model"}


async def test_count_tokens_falls_back_to_an_estimate_without_extras(server, backend):
    counts = await backend.count_tokens(["a" * 70])

    assert counts == [20]
    assert not backend.capabilities.tokenize
