"""What every server backend shares (bot.backends.http): errors, retries, closing, abort, parsing.

The behaviours are driven through the llama_server backend and its fake, since the
shared code is only reachable through a concrete server API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter
from tenacity import RetryCallState

from bot.backends.base import GenerationRequest
from bot.backends.http import estimate_tokens, iter_ndjson, iter_sse, parse_as, server_message
from bot.backends.llama_server import LlamaServerBackend
from bot.backends.retry import MAX_WAIT, http_retrying
from bot.backends.ollama import OllamaBackend
from bot.config import OllamaConfig
from bot.errors import BackendHTTPError, BackendProtocolError, BackendTimeout, BackendUnavailable, ContextOverflow
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.server import Misbehaviour, closed_port_url
from tests.fakes.streams import collect, http_backend, reply

LONG_REPLY = [f" word{i}" for i in range(200)]


def make(url: str, **fields: object) -> LlamaServerBackend:
    fields.setdefault("cache_reuse", 0)  # no start-up shift probe: only the requests under test reach the fake
    return http_backend("llama_server", url, **fields)  # type: ignore[no-any-return]


@pytest.fixture
async def server() -> AsyncIterator[FakeLlamaServer]:
    async with FakeLlamaServer() as fake:
        yield fake


# --------------------------------------------------------------------------- failures


async def test_connection_refused_raises_unavailable_naming_the_url():
    url = closed_port_url()
    backend = make(url, retries=0)
    try:
        with pytest.raises(BackendUnavailable, match=f"cannot connect to {url}/completion"):
            await reply(backend)
    finally:
        await backend.aclose()


async def test_health_of_an_unreachable_server_is_not_ok_and_says_why():
    url = closed_port_url()
    backend = make(url)
    try:
        health = await backend.health()
    finally:
        await backend.aclose()

    assert not health.ok
    assert url in health.detail


async def test_server_that_never_answers_raises_timeout(server):
    server.misbehave = Misbehaviour.HANG
    backend = make(server.url, retries=0, read_timeout=0.2)
    try:
        with pytest.raises(BackendTimeout):
            await reply(backend)
    finally:
        await backend.aclose()


async def test_failure_before_any_text_is_retried(server):
    server.fail_next = 1
    backend = make(server.url, retries=1)
    try:
        text, _ = await reply(backend)
    finally:
        await backend.aclose()

    assert text == "Hello there, friend."
    assert len(server.bodies("/completion")) == 2


async def test_each_retry_is_logged_with_its_number(server, caplog):
    server.fail_next = 3
    backend = make(server.url, retries=3)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.backends.retry"):
            text, _ = await reply(backend)
    finally:
        await backend.aclose()

    assert text == "Hello there, friend."
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [message.rsplit("(", 1)[1] for message in retries] == ["1/3)", "2/3)", "3/3)"]


def test_retry_waits_double_from_the_first_and_stop_at_the_cap():
    retrying = http_retrying(retries=10, first_wait=0.5, name="t")
    waits = [retrying.wait(_attempt(n)) for n in range(1, 8)]

    assert waits == [0.5, 1.0, 2.0, 4.0, MAX_WAIT, MAX_WAIT, MAX_WAIT]


def _attempt(number: int) -> RetryCallState:
    state = RetryCallState(retry_object=http_retrying(retries=1, first_wait=0.5, name="t"), fn=None, args=(), kwargs={})
    state.attempt_number = number
    return state


async def test_no_retry_when_retries_is_zero(server):
    server.fail_next = 1
    backend = make(server.url, retries=0)
    try:
        with pytest.raises(BackendUnavailable):
            await reply(backend)
    finally:
        await backend.aclose()

    assert len(server.bodies("/completion")) == 1


async def test_failure_after_text_was_yielded_is_not_retried(server):
    server.misbehave = Misbehaviour.DROP
    backend = make(server.url, retries=3)
    seen = []
    try:
        with pytest.raises(BackendProtocolError, match="cut short"):
            async for chunk in backend.stream(GenerationRequest(prompt="hi")):
                seen.append(chunk.text)
    finally:
        await backend.aclose()

    assert seen == ["Hello"]
    assert len(server.bodies("/completion")) == 1


async def test_context_overflow_is_not_retried(server):
    server.n_ctx = 3
    backend = make(server.url, retries=3)
    try:
        with pytest.raises(ContextOverflow):
            await reply(backend, "far too many words for this context")
    finally:
        await backend.aclose()

    assert len(server.bodies("/completion")) == 1


async def test_wrong_api_key_raises_http_error_with_the_server_message_and_the_setting(server):
    server.api_key = "right"
    backend = make(server.url, retries=0, api_key="wrong")
    try:
        with pytest.raises(BackendHTTPError, match=r"HTTP 401: Invalid API Key \(check the backend's api_key\)"):
            await reply(backend)
    finally:
        await backend.aclose()

    assert server.last("/completion").headers["Authorization"] == "Bearer wrong"


async def test_right_api_key_is_sent_as_a_bearer_token(server):
    server.api_key = "right"
    backend = make(server.url, api_key="right")
    try:
        text, _ = await reply(backend)
    finally:
        await backend.aclose()

    assert text == "Hello there, friend."


# --------------------------------------------------------------------------- stopping a generation


async def test_closing_the_stream_early_disconnects_the_server(server):
    server.reply = LONG_REPLY
    server.piece_delay = 0.01
    backend = make(server.url)
    try:
        stream = backend.stream(GenerationRequest(prompt="hi"))
        first = await anext(stream)
        await stream.aclose()
        await asyncio.wait_for(server.client_gone.wait(), 5)
    finally:
        await backend.aclose()

    assert first.text == " word0"
    assert server.pieces_sent < len(LONG_REPLY)


async def test_abort_ends_that_conversations_stream_as_aborted(server):
    server.reply = LONG_REPLY
    server.piece_delay = 0.01
    backend = make(server.url)
    try:
        stream = backend.stream(GenerationRequest(prompt="hi", conversation="chan-1"))
        await anext(stream)
        await backend.abort("chan-1")
        _, final = await asyncio.wait_for(collect(stream), 5)
    finally:
        await backend.aclose()

    assert final.timings.finish_reason == "abort"
    assert server.pieces_sent < len(LONG_REPLY)


async def test_abort_of_another_conversation_leaves_the_stream_alone(server):
    server.reply = ["a", "b", "c"]
    server.piece_delay = 0.01
    backend = make(server.url)
    try:
        stream = backend.stream(GenerationRequest(prompt="hi", conversation="chan-1"))
        first = await anext(stream)
        await backend.abort("chan-2")
        rest, final = await collect(stream)
    finally:
        await backend.aclose()

    assert first.text + rest == "abc"
    assert final.timings.finish_reason == "stop"


# --------------------------------------------------------------------------- token estimate


async def test_token_estimate_is_used_and_warned_about_once(caplog):
    backend = OllamaBackend(OllamaConfig(type="ollama", url=closed_port_url(), model="m"))
    try:
        with caplog.at_level(logging.WARNING, logger="bot.backends.http"):
            first = await backend.count_tokens(["a" * 35, ""])
            second = await backend.count_tokens(["b" * 7])
    finally:
        await backend.aclose()

    assert first == [10, 0]
    assert second == [2]
    assert sum("estimated" in r.getMessage() for r in caplog.records) == 1


def test_estimate_rounds_up():
    assert estimate_tokens("abcd") == 2


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": {"code": 400, "message": "bad prompt", "type": "invalid_request_error"}}', "bad prompt"),
        ('{"error": "model \\"x\\" not found, try pulling it first"}', 'model "x" not found, try pulling it first'),
        ('{"detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}}',
         "Server is busy; please try again later."),
        ('{"detail": "Unauthorized"}', "Unauthorized"),
        ("<html><body>502   Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
    ],
)
def test_server_message_is_found_in_every_known_error_shape(body, message):
    assert server_message(body) == message


def _response(raw: bytes, content_type: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(
        200,
        headers={"Content-Type": content_type},
        stream=httpx.ByteStream(raw),
        request=httpx.Request("POST", "http://test/x"),
    )


async def test_sse_reader_handles_names_comments_multiline_data_and_crlf():
    raw = b": keep-alive\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: [DONE]\n\n"

    events = [e async for e in iter_sse(_response(raw), backend="t")]

    assert [(e.event, e.data) for e in events] == [("message", '{"a":\n1}'), ("message", "[DONE]")]


async def test_sse_reader_drops_an_event_the_stream_ends_in_the_middle_of():
    # the SSE standard's rule: the backend then finds the final message missing (a cut stream)
    events = [e async for e in iter_sse(_response(b'data: {"a": 1}\n\ndata: [DONE]'), backend="t")]

    assert [e.data for e in events] == ['{"a": 1}']


async def test_sse_reader_refuses_a_response_that_is_not_an_event_stream():
    with pytest.raises(BackendProtocolError, match="did not answer with an event stream.*application/json"):
        [e async for e in iter_sse(_response(b'{"a": 1}', "application/json"), backend="t")]


async def test_ndjson_reader_refuses_a_line_that_is_not_json():
    with pytest.raises(BackendProtocolError, match="malformed JSON"):
        [line async for line in iter_ndjson(_response(b'{"a": 1}\n{"b": \n'), _OBJECT, backend="t")]


async def test_ndjson_reader_names_the_field_a_line_lacks():
    with pytest.raises(BackendProtocolError, match=r"unexpected JSON in the stream: done: field required"):
        [line async for line in iter_ndjson(_response(b'{"response": "x"}\n'), _LINE, backend="t")]


class _Line(BaseModel):
    response: str
    done: bool


_OBJECT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_LINE = TypeAdapter(_Line)


def test_parsed_answers_name_the_field_that_is_wrong():
    with pytest.raises(BackendProtocolError, match=r"unexpected JSON in the answer of /x: done: input should be a valid boolean"):
        parse_as(_LINE, '{"response": "x", "done": "maybe"}', backend="t", what="the answer of /x")
