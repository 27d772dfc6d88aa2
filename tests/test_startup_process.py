"""``python -m bot run`` started before Discord can be reached: it waits, and SIGTERM ends it at any moment.

The bot runs as a real process. "Discord" is the fake Discord started late on a port
that refused connections until then, or a TCP server that accepts connections and
never answers (a login that hangs).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from discord_harness import ROOT, build_world
from fakediscord import FakeDiscord

from tests.fakes.openai import FakeOpenAIServer

pytestmark = pytest.mark.discord

TOKEN = "MTIz.fake.startuptoken"
QUICK_EXIT = 3.0  # seconds from SIGTERM to the process gone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def model_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply=[" Hello", " there."]) as server:
        yield server


def write_config(tmp_path: Path, port: int, model_server: FakeOpenAIServer) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"characters_dir: {ROOT / 'characters'}\n"
        f"backend: {{type: openai, url: '{model_server.url}', n_ctx: 4096, retries: 0}}\n"
        f"store: {{path: {tmp_path / 'troupe.db'}}}\n"
        "discord: {token: '${DISCORD_TOKEN:-}', user_cooldown: 0, "
        f"api_url: 'http://127.0.0.1:{port}/api/v10', gateway_url: 'ws://127.0.0.1:{port}/gateway'}}\n"
    )
    return path


@contextlib.asynccontextmanager
async def bot_process(config: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot run`` with its output in ``log``; killed if still running at the end."""
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as output:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
            stdout=output, stderr=output,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_until(predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def attempts_logged(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "cannot reach Discord at" in line]


async def sigterm_and_time_the_exit(proc: asyncio.subprocess.Process) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 15)
    return code, time.monotonic() - started


async def test_bot_started_before_discord_is_reachable_connects_once_it_is(
    tmp_path: Path, model_server: FakeOpenAIServer
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    async with bot_process(write_config(tmp_path, port, model_server), log) as proc:
        await wait_until(lambda: len(attempts_logged(log)) >= 2, 30)  # refused twice: 1 s, then 2 s apart
        fake = await FakeDiscord(token=TOKEN).start(port)
        try:
            world = build_world(fake)
            await fake.wait_connected(timeout=30)
            await fake.user_says(world.channel, world.alice, "hello?", mention_bot=True)
            await fake.wait_for(lambda: fake.sent_by_bot(world.channel), timeout=30)
            code, _ = await sigterm_and_time_the_exit(proc)
        finally:
            await fake.close()
    output = log.read_text()
    assert code == 0, output[-2000:]
    assert "Stopped cleanly" in output
    assert TOKEN not in output


async def test_each_attempt_to_reach_discord_is_logged_once_with_the_reason(
    tmp_path: Path, model_server: FakeOpenAIServer
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    async with bot_process(write_config(tmp_path, port, model_server), log) as proc:
        await wait_until(lambda: len(attempts_logged(log)) >= 2, 30)
        await sigterm_and_time_the_exit(proc)
    first, second = attempts_logged(log)[:2]
    assert f"cannot reach Discord at http://127.0.0.1:{port}/api/v10: Cannot connect to host" in first
    assert first.endswith("attempt 1, retrying in 1 s") and second.endswith("attempt 2, retrying in 2 s")
    assert "Traceback" not in log.read_text()


async def test_sigterm_while_waiting_for_discord_ends_the_bot_at_once(
    tmp_path: Path, model_server: FakeOpenAIServer
) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    async with bot_process(write_config(tmp_path, port, model_server), log) as proc:
        await wait_until(lambda: attempts_logged(log), 30)
        code, took = await sigterm_and_time_the_exit(proc)
    assert code == 0, log.read_text()[-2000:]
    assert took < QUICK_EXIT
    assert "Stopped cleanly" in log.read_text()


async def test_sigterm_while_logging_in_to_a_server_that_never_answers_ends_the_bot_at_once(
    tmp_path: Path, model_server: FakeOpenAIServer
) -> None:
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port, log = server.sockets[0].getsockname()[1], tmp_path / "bot.log"
    try:
        async with bot_process(write_config(tmp_path, port, model_server), log) as proc:
            await asyncio.wait_for(accepted.wait(), 30)
            await asyncio.sleep(0.5)  # the login request is sent and waiting for its answer
            code, took = await sigterm_and_time_the_exit(proc)
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert code == 0, log.read_text()[-2000:]
    assert took < QUICK_EXIT
    assert "Stopped cleanly" in log.read_text()


async def test_sigterm_while_replying_ends_the_bot_at_once(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "bot.log"
    async with FakeOpenAIServer(reply=[f" word{i}" for i in range(400)], piece_delay=0.05) as slow_model:
        fake = await FakeDiscord(token=TOKEN).start(port)
        try:
            world = build_world(fake)
            async with bot_process(write_config(tmp_path, port, slow_model), log) as proc:
                await fake.wait_connected(timeout=30)
                await fake.user_says(world.channel, world.alice, "a long story, please", mention_bot=True)
                await fake.wait_for(lambda: fake.sent_by_bot(world.channel), timeout=30)  # 20 s of reply to go
                code, took = await sigterm_and_time_the_exit(proc)
        finally:
            await fake.close()
    assert code == 0, log.read_text()[-2000:]
    assert took < QUICK_EXIT
    assert "Stopped cleanly" in log.read_text()
