"""Metrics and health end to end: the real bot against the fake Discord and a fake llama-server,
scraped over HTTP like Prometheus and an orchestrator would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from prometheus_client.parser import text_string_to_metric_families

from bot.app import TroupeBot
from bot.backends.registry import create_backend
from bot.cogs.chat import COOLDOWN
from bot.config import Config
from tests.fakes.llama_server import FakeLlamaServer

pytestmark = pytest.mark.discord


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def config_for(fake: FakeDiscord, tmp_path: Path, server: FakeLlamaServer, **overrides: object) -> Config:
    return make_config(
        fake, tmp_path,
        backend={"type": "llama_server", "url": server.url, "retries": 0, "read_timeout": 10},
        metrics={"listen": "127.0.0.1:0", "health_interval": 0.2},
        **overrides,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


async def scrape(bot: TroupeBot, path: str) -> httpx.Response:
    assert bot.ops is not None
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{bot.ops.port}{path}")


async def test_metrics_count_replies_by_outcome_with_their_times_and_tokens(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with FakeLlamaServer() as server:
        config = config_for(fake_discord, tmp_path, server, discord={"user_cooldown": 60})
        backend = create_backend(config.backend)
        try:
            async with running_bot(fake_discord, config, backend) as bot:
                await fake_discord.user_says(world.channel, world.alice, "a cider please", mention_bot=True)
                await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel), timeout=10)
                second = await fake_discord.user_says(world.channel, world.alice, "and another", mention_bot=True)
                await fake_discord.wait_for(lambda: COOLDOWN in second.reactions, timeout=5)
                await asyncio.sleep(0.5)  # the loop-lag and health timers tick meanwhile
                text = (await scrape(bot, "/metrics")).text
        finally:
            await backend.aclose()
    got = samples(text)
    assert got[("troupe_replies_total", (("outcome", "answered"), ("shard", "0")))] == 1
    assert got[("troupe_replies_total", (("outcome", "cooldown"), ("shard", "0")))] == 1
    assert got[("troupe_reply_first_text_seconds_count", (("shard", "0"),))] == 1
    assert got[("troupe_reply_last_edit_seconds_count", (("shard", "0"),))] == 1
    assert got[("troupe_prompt_tokens_total", (("shard", "0"),))] > 0
    assert ("troupe_prompt_tokens_evaluated_total", (("shard", "0"),)) in got
    assert got[("troupe_backend_up", (("member", backend.name), ("shard", "0")))] == 1
    assert got[("troupe_event_loop_lag_seconds_count", (("shard", "0"),))] > 0
    assert ("troupe_gateway_latency_seconds", (("shard", "0"),)) in got
    assert got[("troupe_queue_depth", (("shard", "0"),))] == 0


async def test_readyz_turns_unready_when_the_backend_goes_away_and_ready_when_it_is_back(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with FakeLlamaServer() as server:
        config = config_for(fake_discord, tmp_path, server)
        backend = create_backend(config.backend)
        try:
            async with running_bot(fake_discord, config, backend) as bot:
                assert (await wait_status(bot, 200)).json() == {
                    "ready": True, "checks": {"discord": True, "store": True, "backend": True}}
                await server.stop()
                gone = await wait_status(bot, 503)
                await server.start()
                back = await wait_status(bot, 200)
                alive = await scrape(bot, "/healthz")
        finally:
            await backend.aclose()
    assert gone.json()["checks"] == {"discord": True, "store": True, "backend": False}
    assert back.json()["ready"] is True
    assert alive.status_code == 200


async def wait_status(bot: TroupeBot, status: int, timeout: float = 10.0) -> httpx.Response:
    """Poll /readyz until it answers ``status``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await scrape(bot, "/readyz")
        if response.status_code == status or asyncio.get_running_loop().time() > deadline:
            assert response.status_code == status, response.text
            return response
        await asyncio.sleep(0.1)
