"""Faults end to end: a failing backend and a misbehaving Discord, with the real bot.

Backend faults use the real ``openai`` backend against the strict fake OpenAI server
(or a closed port). For each, the channel gets one short honest message (no
traceback, no silence), the owner gets one clear log line, and the next mention is
answered once the backend is back. A reply that fails after part of it was posted
keeps that part and is marked with ``CUT_NOTE`` instead of getting a second message.
Discord faults come from the fake: 429s, missing permissions, deleted webhooks and
messages, gateway reconnects and duplicate events.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord, Perm
from fakediscord.events import Event, Intents
from fakediscord.model import Channel, Message
from fakediscord.payloads import message_payload

from bot.backends.openai import OpenAIBackend
from bot.config import Config
from bot.discord_io import CUT_NOTE
from bot.testing import ScriptedBackend
from tests.fakes.openai import FakeOpenAIServer
from tests.fakes.server import Misbehaviour, closed_port_url

pytestmark = pytest.mark.discord


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def spoken(fake: FakeDiscord, channel: Channel) -> list[Message]:
    """What the bot said in ``channel`` (not its answers to slash commands)."""
    return [m for m in fake.sent_by_bot(channel) if m.interaction is None]


async def bot_messages(
    fake: FakeDiscord, channel: Channel, count: int = 1, timeout: float = 5.0
) -> list[Message]:
    """The bot's messages in ``channel`` once there are at least ``count``."""
    return await fake.wait_for(lambda: (m := spoken(fake, channel)) and len(m) >= count and m, timeout)


async def settled(fake: FakeDiscord, channel: Channel, text: str, timeout: float = 5.0) -> list[Message]:
    """The bot's messages once one of them ends with ``text``, after a moment for any late extra."""
    await fake.wait_for(lambda: any(m.content.endswith(text) for m in spoken(fake, channel)), timeout)
    await asyncio.sleep(0.3)
    return spoken(fake, channel)


_WORDS = ("storm night road lantern river tavern stranger cloak silver coin horse bell fire door window "
          "rain song bread candle shadow mill bridge lane harbour ship rope gull tide market oak").split()


def prose(chapters: int, words: int = 160, seed: int = 1) -> str:
    """Long text that never repeats itself (a looping reply would be cut by the repetition guard)."""
    rng = random.Random(seed)
    return "\n\n".join(
        f"Chapter {i}. " + " ".join(rng.choice(_WORDS) for _ in range(words)) + "." for i in range(chapters)
    )


# --------------------------------------------------------------------------- backend faults


@dataclass
class FlakyOpenAIServer(FakeOpenAIServer):
    """The fake OpenAI server, answering completions with ``status`` while it is set."""

    status: int = 0

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if self.status:
            body = {"error": {"message": "CUDA error: an illegal memory access", "type": "server_error",
                              "param": None, "code": None}}
            return web.json_response(body, status=self.status)
        return await super()._completions(request)


def openai_config(fake: FakeDiscord, tmp_path: Path, url: str, **backend: Any) -> Config:
    settings = {"type": "openai", "url": url, "n_ctx": 4096, "retries": 0, "connect_timeout": 1.0, **backend}
    return make_config(fake, tmp_path, backend=settings)


@dataclass
class Outage:
    """What people and the owner saw while the backend failed, and after it came back."""

    during: list[Message]
    after: list[Message]
    logged: list[logging.LogRecord]


async def ride_out(
    fake: FakeDiscord, world: World, config: Config, caplog: pytest.LogCaptureFixture,
    repair: Callable[[], Awaitable[None]], *, healthy_text: str = "Back again.",
) -> Outage:
    """Mention the bot while the backend fails, repair it, mention again."""
    backend = OpenAIBackend(config.backend)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    try:
        async with running_bot(fake, config, backend):
            await fake.user_says(world.channel, world.alice, "hello?", mention_bot=True)
            await bot_messages(fake, world.channel)
            await asyncio.sleep(0.3)  # a second message would show up now
            during = spoken(fake, world.channel)
            logged = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bot.")]
            await repair()
            await fake.user_says(world.channel, world.alice, "hello again?", mention_bot=True)
            after = (await settled(fake, world.channel, healthy_text))[len(during):]
    finally:
        await backend.aclose()
    return Outage(during, after, logged)


def assert_one_honest_notice(outage: Outage, says: str, log_says: str) -> None:
    [notice] = outage.during
    assert says in notice.content and len(notice.content) < 200 and "Traceback" not in notice.content
    assert notice.content.startswith("⚠️") and notice.webhook_id is None
    failures = [r for r in outage.logged if r.name == "bot.discord_io.responder"]
    assert len(failures) == 1, [r.getMessage() for r in outage.logged]
    assert log_says in failures[0].getMessage()
    assert all(r.exc_info is None for r in outage.logged), "the owner gets a line, not a traceback"
    assert [m.content for m in outage.after] == ["Back again."]


async def test_backend_connection_refused(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = closed_port_url()
    server = FakeOpenAIServer(port=int(url.rsplit(":", 1)[1]), reply=["Back ", "again."])
    config = openai_config(fake_discord, tmp_path, url)
    outage = await ride_out(fake_discord, world, config, caplog, server.start)
    await server.stop()
    assert_one_honest_notice(outage, "isn't reachable", "cannot connect to")


async def test_backend_timeout(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeOpenAIServer(reply=["Back ", "again."], misbehave=Misbehaviour.HANG) as server:
        async def repair() -> None:
            server.misbehave = Misbehaviour.NONE

        config = openai_config(fake_discord, tmp_path, server.url, read_timeout=0.5)
        outage = await ride_out(fake_discord, world, config, caplog, repair)
    assert_one_honest_notice(outage, "took too long", "read_timeout")


async def test_backend_http_500(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FlakyOpenAIServer(reply=["Back ", "again."], status=500) as server:
        async def repair() -> None:
            server.status = 0

        config = openai_config(fake_discord, tmp_path, server.url)
        outage = await ride_out(fake_discord, world, config, caplog, repair)
    assert_one_honest_notice(outage, "failed to answer", "HTTP 500: CUDA error")


async def test_backend_context_overflow(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeOpenAIServer(reply=["Back ", "again."], n_ctx=40) as server:
        async def repair() -> None:
            server.n_ctx = 100_000

        config = openai_config(fake_discord, tmp_path, server.url)
        outage = await ride_out(fake_discord, world, config, caplog, repair)
    assert_one_honest_notice(outage, "too long for my model", "does not fit the model's context")


async def test_stream_cut_mid_reply_keeps_the_text_and_marks_it(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    story = ["Once upon ", "a time ", "there was"]
    async with FakeOpenAIServer(reply=story, misbehave=Misbehaviour.DROP) as server:
        async def repair() -> None:
            server.misbehave = Misbehaviour.NONE
            server.reply = ["Back ", "again."]

        config = openai_config(fake_discord, tmp_path, server.url)
        outage = await ride_out(fake_discord, world, config, caplog, repair)
        second_prompt = server.bodies("/v1/completions")[-1]["prompt"]
    [cut] = outage.during
    assert cut.content == f"Once upon\n{CUT_NOTE}" and cut.username == "Aria"
    failures = [r for r in outage.logged if r.name == "bot.discord_io.responder"]
    assert len(failures) == 1 and "cut short" in failures[0].getMessage()
    assert [m.content for m in outage.after] == ["Back again."]
    assert "[Aria]: Once upon\n" in second_prompt and "cut off" not in second_prompt  # the note is not said


async def test_slow_first_token_keeps_typing_and_the_reply_arrives(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    # Discord shows "typing" for about 10 s; discord.py re-sends it every 5 s
    backend = ScriptedBackend([["Sorry, ", "I was ", "thinking."]], first_chunk_delay=5.6)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "a hard question", mention_bot=True)
        [reply] = await settled(fake_discord, world.channel, "thinking.", timeout=10)
    typing = [t for channel_id, t in fake_discord.typing if channel_id == world.channel.id]
    assert len(typing) >= 2 and typing[-1] - typing[0] >= 4.5  # re-sent while waiting
    assert reply.content == "Sorry, I was thinking."


# --------------------------------------------------------------------------- Discord faults


@pytest.mark.parametrize(("reply_as", "send", "edit"), [
    ("webhook", "/webhooks/*/*", "/webhooks/*/*/messages/*"),
    ("bot", "/channels/*/messages", "/channels/*/messages/*"),
])
async def test_429_on_sends_and_edits_is_waited_out(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, reply_as: str, send: str, edit: str
) -> None:
    fake_discord.set_rate_limit(100, 1.0)  # only the injected 429s
    fake_discord.fail_next("POST", send, 429, times=2, retry_after=0.1)
    fake_discord.fail_next("PATCH", edit, 429, times=2, retry_after=0.1)
    backend = ScriptedBackend([[f"word{i} " for i in range(12)]], chunk_delay=0.05)
    config = make_config(fake_discord, tmp_path, discord={"reply_as": reply_as})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "count", mention_bot=True)
        [reply] = await settled(fake_discord, world.channel, "word11", timeout=10)
    assert reply.content.removeprefix("**Aria**: ") == " ".join(f"word{i}" for i in range(12))
    limited = [r for r in fake_discord.errors if r.status == 429]
    assert {r.method for r in limited} == {"POST", "PATCH"} and len(limited) == 4


async def test_undeclared_rate_limits_lose_and_repeat_nothing(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.advertise_rate_limits = False  # discord.py runs into the 429s instead of waiting ahead
    fake_discord.set_rate_limit(2, 0.5)
    text = prose(3, words=250)
    backend = ScriptedBackend([[text[i:i + 200] for i in range(0, len(text), 200)]], chunk_delay=0.02)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "the long version", mention_bot=True)
        parts = await settled(fake_discord, world.channel, text[-30:], timeout=20)
    assert fake_discord.rate_limited, "the test should have run into the rate limit"
    assert "\n\n".join(p.content for p in parts).split() == text.split()


async def test_stopping_a_rate_limited_reply_posts_nothing_twice_and_frees_the_channel(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.set_rate_limit(1, 0.4)  # every request waits out its bucket inside discord.py
    story = prose(12)
    chunks = [story[i:i + 100] for i in range(0, len(story), 100)]
    backend = ScriptedBackend([chunks, ["Yes?"]], chunk_delay=0.01)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "tell me everything", mention_bot=True)
        await bot_messages(fake_discord, world.channel)
        await asyncio.sleep(0.5)
        stop = await fake_discord.invoke(world.channel, world.alice, "stop")
        await stop.wait_response()
        await fake_discord.user_says(world.channel, world.alice, "are you there?", mention_bot=True)
        await settled(fake_discord, world.channel, "Yes?", timeout=4)  # not stuck behind the stopped reply
    contents = [m.content for m in spoken(fake_discord, world.channel)]
    assert len(contents) == len(set(contents)), "a message was posted twice"
    assert contents[-1] == "Yes?" and "Chapter 11" not in "".join(contents)


async def test_shutdown_during_a_rate_limited_reply_is_prompt_and_posts_nothing_twice(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.set_rate_limit(1, 0.4)
    story = prose(12)
    backend = ScriptedBackend([[story[i:i + 100] for i in range(0, len(story), 100)]], chunk_delay=0.01)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "tell me everything", mention_bot=True)
        await bot_messages(fake_discord, world.channel)
        await asyncio.sleep(0.5)
        closing = time.monotonic()
    assert time.monotonic() - closing < 5
    contents = [m.content for m in spoken(fake_discord, world.channel)]
    assert len(contents) == len(set(contents)), "a message was posted twice"


async def test_refused_webhook_falls_back_to_plain_messages_and_is_not_retried(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.fail_next("POST", "/channels/*/webhooks", 403, 50013, "Missing Permissions")
    backend = ScriptedBackend([["First."], ["Second."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await settled(fake_discord, world.channel, "First.")
        await fake_discord.user_says(world.channel, world.alice, "hi again", mention_bot=True)
        replies = await settled(fake_discord, world.channel, "Second.")
    assert [m.content for m in replies] == ["**Aria**: First.", "**Aria**: Second."]
    creates = [r for r in fake_discord.requests if r.method == "POST" and r.path.endswith("/webhooks")]
    assert len(creates) == 1


async def test_without_send_messages_the_character_still_speaks_through_its_webhook(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    world.channel.deny_bot(Perm.SEND_MESSAGES)  # typing is refused too (403 50013)
    backend = ScriptedBackend([["Through the hook."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        [reply] = await settled(fake_discord, world.channel, "Through the hook.")
    assert reply.webhook_id is not None and reply.username == "Aria"
    assert any(r.path.endswith("/typing") and r.status == 403 for r in fake_discord.errors)


async def test_a_channel_the_bot_cannot_post_in_gets_one_clear_log_line(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.channel.deny_bot(Perm.SEND_MESSAGES)
    backend = ScriptedBackend([["Nobody will see this."]])
    config = make_config(fake_discord, tmp_path, discord={"reply_as": "bot"})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await fake_discord.wait_for(lambda: [r for r in caplog.records if "refused" in r.getMessage()])
        await asyncio.sleep(0.2)
    assert spoken(fake_discord, world.channel) == []
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bot.")]
    assert len(problems) == 1 and "Missing Permissions" in problems[0].getMessage()
    assert problems[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


async def test_without_read_message_history_the_message_itself_is_answered(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.channel.deny_bot(Perm.READ_MESSAGE_HISTORY)
    backend = ScriptedBackend([["Just this, then."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "earlier chatter")
        await fake_discord.user_says(world.channel, world.alice, "what now?", mention_bot=True)
        [reply] = await settled(fake_discord, world.channel, "Just this, then.")
    prompt = backend.requests[0].prompt
    assert "[Alice]: @Aria what now?" in prompt and "earlier chatter" not in prompt
    assert reply.username == "Aria"
    assert any("Cannot read the history" in r.getMessage() for r in caplog.records)


async def test_a_deleted_webhook_is_forgotten_and_replaced(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["First."], ["Second."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend) as bot:
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        [first] = await settled(fake_discord, world.channel, "First.")
        del fake_discord.world.webhooks[first.webhook_id]  # type: ignore[arg-type]  # someone deleted it
        await fake_discord.user_says(world.channel, world.alice, "hi again", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.messages(world.channel)[-1].content == "Second.")
        saved = await bot.store.webhook(world.channel.id)
    second = fake_discord.messages(world.channel)[-1]
    assert second.username == "Aria" and second.webhook_id not in (None, first.webhook_id)
    assert saved is not None and saved.webhook_id == second.webhook_id
    assert any(r.error_code == 10015 for r in fake_discord.errors)


async def test_a_webhook_deleted_mid_reply_continues_in_a_new_message(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.set_rate_limit(100, 1.0)
    words = [f"word{i} " for i in range(30)]
    backend = ScriptedBackend([words], chunk_delay=0.03)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "count slowly", mention_bot=True)
        [first] = await bot_messages(fake_discord, world.channel)
        del fake_discord.world.webhooks[first.webhook_id]  # type: ignore[arg-type]
        messages = fake_discord.messages
        await fake_discord.wait_for(lambda: messages(world.channel)[-1].content.endswith("word29"))
        await asyncio.sleep(0.3)
    replies = [m for m in fake_discord.messages(world.channel) if m.webhook_id is not None]
    assert len(replies) == 2 and replies[1].webhook_id != first.webhook_id and replies[1].username == "Aria"
    assert " ".join(m.content for m in replies).split() == "".join(words).split()


async def test_the_replied_to_message_deleted_before_the_reply_is_sent(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["You left already?"]], first_chunk_delay=0.5)
    config = make_config(fake_discord, tmp_path, discord={"reply_as": "bot"})
    async with running_bot(fake_discord, config, backend):
        question = await fake_discord.user_says(world.channel, world.alice, "quick one", mention_bot=True)
        await fake_discord.wait_for(lambda: backend.requests)
        await fake_discord.delete_message(question)
        replies = await settled(fake_discord, world.channel, "You left already?")
    assert [(m.content, m.reference_id) for m in replies] == [("**Aria**: You left already?", None)]


# --------------------------------------------------------------------------- the gateway


async def _identify_at_once(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before identifying again (Discord's identify limit); the fake has none."""


async def test_reconnect_while_a_reply_is_pending_sends_it_once(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Here I am."], ["Missed nothing."]], first_chunk_delay=0.5)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "hello", mention_bot=True)
        await fake_discord.wait_for(lambda: backend.requests)
        await fake_discord.reconnect_gateway()
        await fake_discord.user_says(world.channel, world.alice, "said while you were away", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.gateway.count("RESUMED"))
        replies = await settled(fake_discord, world.channel, "Missed nothing.")
        await asyncio.sleep(0.5)
    assert [m.content for m in spoken(fake_discord, world.channel)] == ["Here I am.", "Missed nothing."]
    assert len(replies) == 2 and len(backend.requests) == 2


@pytest.mark.parametrize("resumable", [True, False])
async def test_invalid_session_while_a_reply_is_pending_sends_it_once(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, resumable: bool
) -> None:
    backend = ScriptedBackend([["Here I am."], ["Still here."]], first_chunk_delay=0.5)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend) as bot:
        bot.before_identify_hook = _identify_at_once  # type: ignore[method-assign]
        await fake_discord.user_says(world.channel, world.alice, "hello", mention_bot=True)
        await fake_discord.wait_for(lambda: backend.requests)
        identified = fake_discord.gateway.count("IDENTIFY")
        await fake_discord.invalidate_session(resumable=resumable)
        await settled(fake_discord, world.channel, "Here I am.")
        kind = "RESUMED" if resumable else "IDENTIFY"
        before = 0 if resumable else identified
        await fake_discord.wait_for(lambda: fake_discord.gateway.count(kind) > before, 10)
        await fake_discord.wait_connected(10)
        await fake_discord.user_says(world.channel, world.alice, "and now?", mention_bot=True)
        await settled(fake_discord, world.channel, "Still here.", timeout=10)
    assert [m.content for m in spoken(fake_discord, world.channel)] == ["Here I am.", "Still here."]


async def test_an_event_delivered_twice_is_answered_once(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Only once."]], first_chunk_delay=0.2)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        message = await fake_discord.user_says(world.channel, world.alice, "hello", mention_bot=True)
        duplicate = Event("MESSAGE_CREATE", message_payload(message, gateway=True), Intents.GUILD_MESSAGES,
                          world.guild.id, message)
        fake_discord.world.emit(duplicate)
        await settled(fake_discord, world.channel, "Only once.")
        await asyncio.sleep(0.4)
    assert [m.content for m in spoken(fake_discord, world.channel)] == ["Only once."]
    assert len(backend.requests) == 1
