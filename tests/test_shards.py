"""Shards: discord.py's sharded client in one process (``shard_count: auto``), and two real bot
processes splitting two shards over one PostgreSQL store, each answering only its own servers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from discord_harness import ROOT, World, build_world, make_config, running_bot
from fakediscord import FakeDiscord, Guild
from prometheus_client.parser import text_string_to_metric_families

from bot.backends.scripted import ScriptedBackend
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.server import free_port

pytestmark = pytest.mark.discord


def shard_of(guild_id: int, count: int = 2) -> int:
    """Discord's rule: a server's events go to shard (id >> 22) % count."""
    return (guild_id >> 22) % count


async def guild_on_the_other_shard(fake: FakeDiscord, world: World) -> Guild:
    """A second server that Discord puts on the other of two shards."""
    other = fake.add_guild("Far Inn")
    while shard_of(other.id) == shard_of(world.guild.id):
        await asyncio.sleep(0.002)  # a server made a millisecond later has another id, maybe the other shard
        other = fake.add_guild("Far Inn")
    other.add_member(world.alice)
    return other


async def _no_wait(self: object, shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s between two shards' IDENTIFY (Discord's limit); the fake has none."""


async def test_auto_shard_count_runs_every_recommended_shard_in_one_process(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    world = build_world(fake_discord)
    far = (await guild_on_the_other_shard(fake_discord, world)).add_text_channel("common-room")
    fake_discord.recommended_shards = 2
    backend = ScriptedBackend([["Here."], ["And here."]])
    config = make_config(fake_discord, tmp_path, discord={"shard_count": "auto"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("discord.AutoShardedClient.before_identify_hook", _no_wait)
        async with running_bot(fake_discord, config, backend) as bot:
            await fake_discord.user_says(far, world.alice, "anyone over here?", mention_bot=True)
            await fake_discord.user_says(world.channel, world.alice, "hello there?", mention_bot=True)
            await fake_discord.wait_for(
                lambda: fake_discord.sent_by_bot(world.channel) and fake_discord.sent_by_bot(far), timeout=10)
            shards = sorted(bot.shards)
    assert shards == [0, 1]
    assert sorted(s.shard for s in fake_discord.gateway.sessions.values()) == [(0, 2), (1, 2)]


def write_config(fake: FakeDiscord, tmp_path: Path, name: str, *, store: str, backend: str, shard: int,
                 metrics_port: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "config.yaml"
    path.write_text(
        f"characters_dir: {ROOT / 'characters'}\n"
        f"default_character: Aria\n"
        f"backend: {{type: llama_server, url: '{backend}', retries: 0}}\n"
        f"store: {{url: '{store}'}}\n"
        f"metrics: {{listen: '127.0.0.1:{metrics_port}', health_interval: 0.5}}\n"
        f"discord: {{token: '${{DISCORD_TOKEN}}', api_url: '{fake.api_url}', gateway_url: '{fake.gateway_url}',\n"
        f"  user_cooldown: 0, edit_interval: 0.2, shard_count: 2, shard_ids: [{shard}]}}\n"
    )
    return path


@contextlib.asynccontextmanager
async def bot_process(config: Path, token: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot run`` as its own process; stopped with SIGTERM on exit."""
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    with config.with_suffix(".log").open("wb") as log:  # the child keeps its own copy of the handle
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_ready(port: int, config: Path, timeout: float = 60.0) -> None:
    """Poll the process's /readyz until it answers 200."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"not ready in {timeout} s:\n{config.with_suffix('.log').read_text()[-3000:]}")


async def answered(port: int) -> dict[str, float]:
    """The process's answered replies by shard label, from its /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return {
        sample.labels["shard"]: sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
        if sample.name == "troupe_replies_total" and sample.labels["outcome"] == "answered"
    }


async def test_two_processes_split_two_shards_and_each_answers_only_its_own_servers(
    fake_discord: FakeDiscord, tmp_path: Path, postgres_url: str
) -> None:
    world = build_world(fake_discord)
    far = (await guild_on_the_other_shard(fake_discord, world)).add_text_channel("common-room")
    ports = [free_port(), free_port()]
    async with FakeLlamaServer() as server:
        configs = [write_config(fake_discord, tmp_path, f"shard{i}", store=postgres_url, backend=server.url,
                                shard=i, metrics_port=ports[i]) for i in (0, 1)]
        async with bot_process(configs[0], fake_discord.token), bot_process(configs[1], fake_discord.token):
            await asyncio.gather(*(wait_ready(port, config) for port, config in zip(ports, configs)))
            await fake_discord.user_says(far, world.alice, "anyone over here?", mention_bot=True)
            await fake_discord.user_says(world.channel, world.alice, "hello there?", mention_bot=True)
            await fake_discord.wait_for(
                lambda: fake_discord.sent_by_bot(world.channel) and fake_discord.sent_by_bot(far), timeout=30)
            await asyncio.sleep(0.5)  # a second answer from the wrong process would show by now
            counts = [await answered(port) for port in ports]
    home = shard_of(world.guild.id)
    assert counts[home] == {str(home): 1.0} and counts[1 - home] == {str(1 - home): 1.0}
    assert len(fake_discord.sent_by_bot(world.channel)) == 1 and len(fake_discord.sent_by_bot(far)) == 1
