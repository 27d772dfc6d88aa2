"""Shards: discord.py's sharded client in one process (``shard_count: auto``), and two real bot
processes splitting two shards over one PostgreSQL store, each answering only its own servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from discord_harness import ROOT, World, build_world, make_config, running_bot
from fakediscord import FakeDiscord, Guild
from fakediscord.interactions import Interaction
from fakediscord.model import Channel, Message
from fakediscord.permissions import Perm
from test_discord_commands import said
from prometheus_client.parser import text_string_to_metric_families

from bot.testing import ScriptedBackend
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


@dataclass
class TwoShards:
    """Two bot processes on two shards sharing one PostgreSQL store and one characters folder."""

    world: World
    far: Channel  # a channel in the server on the other shard
    configs: list[Path]  # each process's config file, by shard
    ports: list[int]  # each process's metrics port, by shard
    processes: list[asyncio.subprocess.Process]  # by shard

    @property
    def home(self) -> int:
        """The shard of the usual test server."""
        return shard_of(self.world.guild.id)

    def log(self, shard: int) -> str:
        return self.configs[shard].with_suffix(".log").read_text()


def write_config(fake: FakeDiscord, folder: Path, *, store: str, backend: str, shard: int, metrics_port: int,
                 characters: Path, default: str = "Aria") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(
        f"characters_dir: {characters}\n"
        f"characters_watch: 0\n"  # only the store's events tell a process of another's cards
        f"default_character: {default}\n"
        f"backend: {{type: llama_server, url: '{backend}', retries: 0}}\n"
        f"store: {{url: '{store}'}}\n"
        f"metrics: {{listen: '127.0.0.1:{metrics_port}', health_interval: 0.5}}\n"
        f"discord: {{token: '${{DISCORD_TOKEN}}', api_url: '{fake.api_url}', gateway_url: '{fake.gateway_url}',\n"
        f"  user_cooldown: 0, edit_interval: 0.2, shard_count: 2, shard_ids: [{shard}]}}\n"
    )
    return path


@contextlib.asynccontextmanager
async def two_shards(fake: FakeDiscord, tmp_path: Path, store: str) -> AsyncIterator[TwoShards]:
    """Both processes started and ready (each one's /readyz answers 200)."""
    world = build_world(fake)
    other = await guild_on_the_other_shard(fake, world)
    other.add_member(world.admin, permissions=int(Perm.MANAGE_GUILD))
    far = other.add_text_channel("common-room")
    characters = tmp_path / "characters"
    shutil.copytree(ROOT / "characters", characters)
    ports = [free_port(), free_port()]
    async with FakeLlamaServer() as server:
        configs = [write_config(fake, tmp_path / f"shard{i}", store=store, backend=server.url, shard=i,
                                metrics_port=ports[i], characters=characters) for i in (0, 1)]
        async with bot_process(configs[0], fake.token) as first, bot_process(configs[1], fake.token) as second:
            await asyncio.gather(*(wait_ready(port, config) for port, config in zip(ports, configs)))
            yield TwoShards(world, far, configs, ports, [first, second])


@contextlib.asynccontextmanager
async def bot_process(config: Path, token: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot run`` as its own process; stopped with SIGTERM on exit."""
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    with config.with_suffix(".log").open("ab") as log:  # the child keeps its own copy of the handle
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
    async with two_shards(fake_discord, tmp_path, postgres_url) as shards:
        world, far = shards.world, shards.far
        await fake_discord.user_says(far, world.alice, "anyone over here?", mention_bot=True)
        await fake_discord.user_says(world.channel, world.alice, "hello there?", mention_bot=True)
        await fake_discord.wait_for(
            lambda: fake_discord.sent_by_bot(world.channel) and fake_discord.sent_by_bot(far), timeout=30)
        await asyncio.sleep(0.5)  # a second answer from the wrong process would show by now
        counts = [await answered(port) for port in shards.ports]
    home = shards.home
    assert counts[home] == {str(home): 1.0} and counts[1 - home] == {str(1 - home): 1.0}
    assert len(fake_discord.sent_by_bot(world.channel)) == 1 and len(fake_discord.sent_by_bot(far)) == 1


def webhook_replies(fake: FakeDiscord, channel: Channel) -> list[Message]:
    """The characters' replies in the channel (posted through the webhook)."""
    return [m for m in fake.sent_by_bot(channel) if m.webhook_id is not None]


async def test_a_card_imported_through_one_process_is_known_to_the_other(
    fake_discord: FakeDiscord, tmp_path: Path, postgres_url: str
) -> None:
    card = json.dumps({"spec": "chara_card_v2", "spec_version": "2.0",
                       "data": {"name": "Mira", "description": "A travelling bard."}}).encode()
    async with two_shards(fake_discord, tmp_path, postgres_url) as shards:
        world, far = shards.world, shards.far
        imported = await fake_discord.invoke(world.channel, world.admin, "character", subcommand="import",
                                             options={"file": ("mira.json", card)})
        await imported.wait_response(10)
        await fake_discord.wait_for(lambda: imported.followups, timeout=10)
        await fake_discord.wait_for(lambda: "Characters reloaded: added Mira" in shards.log(1 - shards.home),
                                    timeout=10)
        chosen = await fake_discord.invoke(far, world.admin, "character", subcommand="set", options={"name": "Mira"})
        await chosen.wait_response(10)
        await fake_discord.user_says(far, world.alice, "play us a song?", mention_bot=True)
        [reply] = await fake_discord.wait_for(lambda: webhook_replies(fake_discord, far), timeout=30)
    assert "Imported **Mira**" in said(imported)
    assert "Mira" in said(chosen)
    assert reply.username == "Mira"


async def test_a_config_reload_in_one_process_reloads_the_others_config(
    fake_discord: FakeDiscord, tmp_path: Path, postgres_url: str
) -> None:
    async with two_shards(fake_discord, tmp_path, postgres_url) as shards:
        world, far = shards.world, shards.far
        other = shards.configs[1 - shards.home]
        other.write_text(other.read_text().replace("default_character: Aria", "default_character: Captain Brass"))
        reload = await fake_discord.invoke(world.channel, world.admin, "config", subcommand="reload")
        await reload.wait_response(10)
        await fake_discord.wait_for(lambda: "another process's /config reload" in shards.log(1 - shards.home),
                                    timeout=10)
        await fake_discord.user_says(far, world.alice, "who's at the helm?", mention_bot=True)
        [reply] = await fake_discord.wait_for(lambda: webhook_replies(fake_discord, far), timeout=30)
    assert reply.username == "Captain Brass"


async def test_a_shard_process_killed_and_started_again_resumes_with_its_channels_state(
    fake_discord: FakeDiscord, tmp_path: Path, postgres_url: str
) -> None:
    async with two_shards(fake_discord, tmp_path, postgres_url) as shards:
        world, home = shards.world, shards.home
        noted = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set",
                                          options={"text": "The bard owes us two silver"})
        await noted.wait_response(10)
        shards.processes[home].kill()  # SIGKILL: no goodbye, no flush
        await shards.processes[home].wait()
        async with bot_process(shards.configs[home], fake_discord.token):
            await wait_ready(shards.ports[home], shards.configs[home])
            shown = await fake_discord.invoke(world.channel, world.alice, "note", subcommand="show")
            await shown.wait_response(10)
            await fake_discord.user_says(world.channel, world.alice, "still pouring?", mention_bot=True)
            await fake_discord.wait_for(lambda: webhook_replies(fake_discord, world.channel), timeout=30)
    assert "The bard owes us two silver" in said(shown)
