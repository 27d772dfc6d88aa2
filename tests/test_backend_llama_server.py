"""The llama_server backend against a strict fake llama.cpp server, for what the real server
(``test_backend_llama_server_real.py``) cannot be made to do on cue: show the request bodies,
stay loading, send malformed or failing streams, answer like a server that cannot shift or
that keeps prompts in RAM."""

from __future__ import annotations

import asyncio

import pytest

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.llama_server import LlamaServerBackend, SlotMap
from bot.errors import BackendHTTPError, BackendProtocolError, BackendUnavailable, ContextOverflow
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.server import Misbehaviour, fake_tokenize
from tests.fakes.streams import fake_and_backend, http_backend, reply


def make(url: str, **fields: object) -> LlamaServerBackend:
    return http_backend("llama_server", url, **fields)  # type: ignore[no-any-return]


server, backend = fake_and_backend(FakeLlamaServer, make)


async def test_request_carries_stops_cache_prompt_n_keep_samplers_and_cache_reuse(server):
    backend = make(server.url, cache_reuse=64)
    try:
        await reply(
            backend,
            stops=("\n[Ann]:", "\n["),
            keep_tokens=120,
            max_tokens=50,
            sampling=Sampling(temperature=0.5, top_k=20, seed=7),
        )
    finally:
        await backend.aclose()

    sent = server.last("/completion").body
    assert sent["stop"] == ["\n[Ann]:", "\n["]
    assert sent["cache_prompt"] is True
    assert sent["n_keep"] == 120
    assert sent["n_predict"] == 50
    assert sent["n_cache_reuse"] == 64
    assert (sent["temperature"], sent["top_k"], sent["seed"]) == (0.5, 20, 7)
    assert sent["stream"] is True


async def test_extra_body_fields_are_passed_through(server):
    backend = make(server.url, extra_body={"dry_multiplier": 0.8})
    try:
        await reply(backend)
    finally:
        await backend.aclose()

    assert server.last("/completion").body["dry_multiplier"] == 0.8


async def test_request_without_conversation_is_not_pinned(server, backend):
    await reply(backend)

    assert "id_slot" not in server.last("/completion").body


async def test_pinning_can_be_turned_off(server):
    backend = make(server.url, pin_slots=False)
    try:
        await reply(backend, conversation="chan-1")
    finally:
        await backend.aclose()

    assert "id_slot" not in server.last("/completion").body


def test_slot_map_gives_the_quietest_conversations_slot_to_a_new_one():
    slots = SlotMap(2)
    a, b = slots.slot_for("a"), slots.slot_for("b")
    slots.slot_for("a")  # a is active again, b is now the quietest

    assert slots.slot_for("c") == b
    assert slots.slot_for("a") == a


async def test_configured_context_size_wins_over_the_server(server):
    backend = make(server.url, n_ctx=1024)
    try:
        assert await backend.context_size() == 1024
    finally:
        await backend.aclose()
    assert not server.bodies("/props")


async def test_wait_until_ready_returns_once_loading_ends(server, backend):
    server.loading = True

    async def finish_loading() -> None:
        while len(server.bodies("/health")) < 2:
            await asyncio.sleep(0.01)
        server.loading = False

    task = asyncio.create_task(finish_loading())
    health = await backend.wait_until_ready(5, poll=0.02)
    await task

    assert health.ok


async def test_generation_gives_up_waiting_after_the_read_timeout(server):
    server.loading = True
    backend = make(server.url, retries=0, read_timeout=0.3)
    try:
        with pytest.raises(BackendUnavailable, match="still not ready after 0.3 s: .*Loading model"):
            await reply(backend)
    finally:
        await backend.aclose()


async def test_generation_while_loading_raises_at_once_when_waiting_is_off(server):
    server.loading = True
    backend = make(server.url, retries=0, wait_for_load=False)
    try:
        with pytest.raises(BackendUnavailable, match="Loading model"):
            await reply(backend)
    finally:
        await backend.aclose()


async def test_stream_cut_mid_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.CUT_MID_LINE

    with pytest.raises(BackendProtocolError, match=r"cut short\?"):
        await reply(backend)


async def test_garbage_in_the_stream_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.GARBAGE

    with pytest.raises(BackendProtocolError, match="malformed JSON"):
        await reply(backend)


async def test_stream_ending_without_the_final_message_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.NO_FINAL

    with pytest.raises(BackendProtocolError, match="without the server's final message"):
        await reply(backend)


async def test_error_event_inside_the_stream_is_raised_with_its_message(server, backend):
    server.stream_error = {"code": 500, "message": "slot 0 crashed", "type": "server_error"}

    with pytest.raises(BackendHTTPError, match="slot 0 crashed") as caught:
        await reply(backend)
    assert caught.value.status == 500


async def test_check_flags_cache_reuse_turned_off_in_the_config(server: FakeLlamaServer) -> None:
    backend = make(server.url, cache_reuse=0)
    try:
        notes = await backend.advice()
    finally:
        await backend.aclose()
    assert any("cache_reuse is 0" in note for note in notes)


async def test_prewarm_never_takes_a_slot_another_conversation_holds(server):
    server.total_slots = 1
    backend = make(server.url, retries=0)
    try:
        await reply(backend, "[Ann]: hi\n[Bot]:", conversation="a")
        sent = len(server.bodies("/completion"))
        assert await backend.prewarm("b", "[Zed]: a quiet corner\n") == 0
        assert len(server.bodies("/completion")) == sent  # nothing was sent: a's cache is left alone
        assert await backend.prewarm("a", "[Ann]: hi\n[Bot]: hello\n") > 0
    finally:
        await backend.aclose()


async def test_prewarm_if_idle_waits_for_no_reply(server, backend):
    server.reply = ["Hello", " there"] * 20
    stream = backend.stream(GenerationRequest(prompt="[Ann]: hi\n[Bot]:", conversation="a"))
    await stream.__anext__()  # a reply is streaming
    try:
        assert await backend.prewarm("a", "[Ann]: hi\n", only_if_idle=True) == 0
    finally:
        await stream.aclose()
    assert await backend.prewarm("a", "[Ann]: hi\n[Bot]: Hello there\n[Ann]: ok\n", only_if_idle=True) > 0


async def test_the_shift_probe_fits_the_servers_context(server: FakeLlamaServer) -> None:
    server.can_shift = False
    server.n_ctx = 500  # one slot's context; the probe for cache_reuse 256 must still fit
    backend = make(server.url, cache_reuse=256)
    try:
        [note] = await backend.advice()
    finally:
        await backend.aclose()
    assert "--cache-reuse 256" in note
    assert all(len(fake_tokenize(body["prompt"])) < 500 for body in server.bodies("/completion"))


async def test_the_shift_probe_is_not_fooled_by_prompts_the_server_remembers(server: FakeLlamaServer) -> None:
    server.can_shift = False
    server.cache_ram = True  # recent llama-server builds restore earlier prompts from RAM
    verdicts = []
    for _ in range(3):  # three `check` runs against the same server
        backend = make(server.url, cache_reuse=32)
        try:
            verdicts.append(await backend.advice())
        finally:
            await backend.aclose()
    assert all(len(notes) == 1 and "--cache-reuse 32" in notes[0] for notes in verdicts)


async def test_n_cache_reuse_is_not_sent_to_a_server_the_probe_found_cannot_shift(server: FakeLlamaServer) -> None:
    server.can_shift = False
    backend = make(server.url, cache_reuse=32)
    try:
        await reply(backend, conversation="a")
        await backend.prewarm("a", "[Ann]: hi\n[Bot]: Hello there, friend.\n")
    finally:
        await backend.aclose()
    reply_body, warm_body = server.bodies("/completion")[-2:]
    assert reply_body["stream"] is True and "n_cache_reuse" not in reply_body
    assert warm_body["stream"] is False and "n_cache_reuse" not in warm_body
    assert not backend.shifts_cache("a")


async def test_the_model_is_named_by_its_file_when_the_alias_is_only_its_path(server, backend):
    assert (await backend.model_info()).name == "fake-model-Q4_K_M.gguf"


async def test_a_field_of_the_wrong_type_in_an_answer_is_named_in_the_error(server, backend):
    server.total_slots = "two"  # type: ignore[assignment]

    with pytest.raises(BackendProtocolError, match="total_slots"):
        await backend.model_info()
