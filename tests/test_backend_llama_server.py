"""The llama_server backend against a fake llama.cpp server that follows the real API."""

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


async def test_stream_yields_the_text_then_a_final_chunk_with_server_timings(server, backend):
    text, final = await reply(backend, "[Ann]: hi\n[Bot]:")

    assert text == "Hello there, friend."
    assert final.timings is not None
    assert final.timings.prompt_tokens == len(fake_tokenize("[Ann]: hi\n[Bot]:"))
    assert final.timings.prompt_evaluated == final.timings.prompt_tokens
    assert final.timings.generated_tokens == 5
    assert final.timings.prompt_seconds == pytest.approx(0.0125)
    assert final.timings.finish_reason == "stop"


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


async def test_server_stop_string_ends_the_reply_with_finish_stop(server, backend):
    text, final = await reply(backend, stops=(" friend",))

    assert text == "Hello there,"
    assert final.timings.finish_reason == "stop"


async def test_token_limit_is_reported_as_finish_length(server, backend):
    text, final = await reply(backend, max_tokens=2)

    assert text == "Hello there"
    assert final.timings.finish_reason == "length"


async def test_extra_body_fields_are_passed_through(server):
    backend = make(server.url, extra_body={"dry_multiplier": 0.8})
    try:
        await reply(backend)
    finally:
        await backend.aclose()

    assert server.last("/completion").body["dry_multiplier"] == 0.8


async def test_a_conversation_keeps_its_slot_and_another_gets_a_different_one(server, backend):
    for conversation in ("chan-1", "chan-2", "chan-1"):
        await reply(backend, conversation=conversation)

    slots = [body["id_slot"] for body in server.bodies("/completion")]
    assert slots[0] == slots[2]
    assert slots[0] != slots[1]


async def test_pinned_conversation_reuses_its_cached_prefix(server, backend):
    await reply(backend, "[Ann]: hi\n[Bot]: hello", conversation="a")
    await reply(backend, "[Zed]: something else entirely", conversation="b")
    _, final = await reply(backend, "[Ann]: hi\n[Bot]: hello\n[Ann]: more", conversation="a")

    assert final.timings.prompt_evaluated == len(fake_tokenize("\n[Ann]: more"))  # the rest was in the slot


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


async def test_count_tokens_uses_the_server_tokenizer_without_special_tokens(server, backend):
    counts = await backend.count_tokens(["Hello there, friend.", ""])

    assert counts == [5, 0]
    assert server.last("/tokenize").body == {"content": "Hello there, friend.", "add_special": False}


async def test_context_size_comes_from_props(server, backend):
    server.n_ctx = 8192

    assert await backend.context_size() == 8192


async def test_configured_context_size_wins_over_the_server(server):
    backend = make(server.url, n_ctx=1024)
    try:
        assert await backend.context_size() == 1024
    finally:
        await backend.aclose()
    assert not server.bodies("/props")


async def test_health_reports_the_model_and_context(server, backend):
    health = await backend.health()

    assert health.ok
    assert health.model == "fake-model-Q4_K_M.gguf"
    assert health.n_ctx == 4096


async def test_health_is_not_ok_while_the_model_loads(server, backend):
    server.loading = True

    health = await backend.health()

    assert not health.ok
    assert "Loading model" in health.detail


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


async def test_generation_while_loading_waits_for_the_model_then_answers(server, backend):
    server.loading = True

    async def finish_loading() -> None:
        while len(server.bodies("/health")) < 2:
            await asyncio.sleep(0.01)
        server.loading = False

    task = asyncio.create_task(finish_loading())
    text, _ = await asyncio.wait_for(reply(backend), 10)
    await task

    assert text == "Hello there, friend."


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


async def test_prompt_longer_than_the_context_raises_context_overflow(server, backend):
    server.n_ctx = 10

    with pytest.raises(ContextOverflow, match=r"exceeds the available context size \(10 tokens\)"):
        await reply(backend, "one two three four five six seven eight nine ten eleven")


async def test_stream_cut_mid_line_raises_protocol_error(server, backend):
    server.misbehave = Misbehaviour.CUT_MID_LINE

    with pytest.raises(BackendProtocolError, match="malformed JSON"):
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


async def test_check_says_nothing_when_the_server_shifts_its_cache(server: FakeLlamaServer) -> None:
    backend = make(server.url, cache_reuse=32)
    try:
        assert await backend.advice() == []
    finally:
        await backend.aclose()


async def test_check_tells_how_to_make_a_server_shift_its_cache(server: FakeLlamaServer) -> None:
    server.can_shift = False
    backend = make(server.url, cache_reuse=32)
    try:
        [note] = await backend.advice()
    finally:
        await backend.aclose()
    assert "--cache-reuse 32" in note and "--swa-full" in note


async def test_check_flags_cache_reuse_turned_off_in_the_config(server: FakeLlamaServer) -> None:
    backend = make(server.url, cache_reuse=0)
    try:
        notes = await backend.advice()
    finally:
        await backend.aclose()
    assert any("cache_reuse is 0" in note for note in notes)


async def test_prewarm_reads_ahead_into_the_conversations_slot(server, backend):
    await reply(backend, "[Ann]: hi\n[Bot]:", conversation="a")
    history = "[Ann]: hi\n[Bot]: hello\n[Cid]: the harvest came early\n[Ann]: so it did\n"

    read = await backend.prewarm("a", history)
    _, final = await reply(backend, history + "[Ann]: Bot?\n[Bot]:", conversation="a")

    [warm] = [body for body in server.bodies("/completion") if not body.get("stream")]
    assert warm["id_slot"] == server.bodies("/completion")[0]["id_slot"] and warm["cache_prompt"] is True
    assert warm["n_predict"] == 1
    assert read == len(fake_tokenize(history)) - len(fake_tokenize("[Ann]: hi\n[Bot]:"))
    assert final.timings.prompt_evaluated == len(fake_tokenize("[Ann]: Bot?\n[Bot]:"))  # only the mention


async def test_prewarm_never_takes_a_slot_another_conversation_holds(server):
    server.total_slots = 1
    backend = make(server.url, retries=0)
    try:
        await reply(backend, "[Ann]: hi\n[Bot]:", conversation="a")
        assert await backend.prewarm("b", "[Zed]: a quiet corner\n") == 0
        assert len(server.bodies("/completion")) == 1  # nothing was sent: a's cache is left alone
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
    backend = make(server.url, cache_reuse=32)
    try:
        verdicts = [await backend.advice() for _ in range(3)]
    finally:
        await backend.aclose()
    assert all(len(notes) == 1 and "--cache-reuse 32" in notes[0] for notes in verdicts)
