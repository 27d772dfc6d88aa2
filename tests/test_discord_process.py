"""``python -m bot run`` as a process: token errors fail fast, SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from discord_harness import ROOT, build_world
from fakediscord import FakeDiscord

from bot.store import Store

pytestmark = pytest.mark.discord


def write_config(fake: FakeDiscord, tmp_path: Path, backend: str = "{type: llama_cpp, n_ctx: 1024}") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"characters_dir: {ROOT / 'characters'}\n"
        f"backend: {backend}\n"
        f"store: {{path: {tmp_path / 'troupe.db'}}}\n"
        f"discord: {{token: '${{DISCORD_TOKEN:-}}', api_url: '{fake.api_url}', gateway_url: '{fake.gateway_url}'}}\n"
    )
    return path


async def start_bot(config: Path, token: str) -> asyncio.subprocess.Process:
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_missing_token_fails_fast_with_a_clear_message(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    proc = await start_bot(write_config(fake_discord, tmp_path), "")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"discord.token is empty: set the DISCORD_TOKEN environment variable" in err


async def test_refused_token_fails_fast_with_a_clear_message(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    proc = await start_bot(write_config(fake_discord, tmp_path), "MTIz.bad.token")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Discord refused the token" in err
    assert b"MTIz.bad.token" not in err  # secrets are never logged


async def test_sigterm_stops_the_bot_cleanly(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    world = build_world(fake_discord)
    proc = await start_bot(write_config(fake_discord, tmp_path), fake_discord.token)
    try:
        await fake_discord.wait_connected(timeout=60)
        await fake_discord.wait_for(lambda: fake_discord.commands.all(), timeout=30)
        await fake_discord.user_says(world.channel, world.alice, "tell me a very long story", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel), timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Stopped cleanly" in err
    assert fake_discord.token.encode() not in err
    async with await Store.open(tmp_path / "troupe.db") as store:  # consistent and readable
        assert (await store.webhook(world.channel.id)) is not None


async def test_json_logs_are_one_object_per_line_without_the_token(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    config = write_config(fake_discord, tmp_path)
    config.write_text(config.read_text() + "log_format: json\n")
    proc = await start_bot(config, "MTIz.bad.token")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = [json.loads(line) for line in err.decode().splitlines()]  # each line parses as JSON
    assert proc.returncode == 2
    assert any("Discord refused the token" in line["message"] and line["level"] == "ERROR" for line in lines)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert b"MTIz.bad.token" not in err
