"""Logs: one INFO line per reply, and HTTP clients' request lines only at DEBUG."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.logs import QUIET_LOGGERS, REPLIES, set_level
from bot.prompt.types import Turn
from bot.testing import ScriptedBackend
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.streams import http_backend

ROOT = Path(__file__).resolve().parent.parent
ARIA = Character(name="Aria", description="Aria keeps the Copper Kettle.")
TURNS = [Turn("Bob", "Evening, Aria. What's good tonight?", "1")]


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = ["", *QUIET_LOGGERS, REPLIES]
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def bot_info(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.INFO]


async def test_a_reply_writes_one_info_line_even_with_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    set_level("INFO")
    backend = ScriptedBackend([["   "], ["The stew."]])
    reply = await ChatService(backend, parse_config({})).reply(ARIA, TURNS, conversation="42")
    await reply.collect()
    assert reply.stats.retries == 1
    assert len(bot_info(caplog)) == 1


async def test_the_reply_line_says_who_answered_where_tokens_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_level("INFO")
    reply = await ChatService(ScriptedBackend([["The stew."]]), parse_config({})).reply(
        ARIA, TURNS, conversation="42"
    )
    await reply.collect()
    (line,) = bot_info(caplog)
    assert line.startswith("Reply as Aria in 42 (scripted): ")
    assert "prompt tokens read" in line and line.endswith(" s")


async def test_a_reply_stopped_early_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    set_level("INFO")
    backend = ScriptedBackend([["The", " stew", " is", " good."]], chunk_delay=0.01)
    reply = await ChatService(backend, parse_config({})).reply(ARIA, TURNS)
    async for _ in reply:
        break
    await reply.aclose()
    assert len(bot_info(caplog)) == 1


async def http_lines(caplog: pytest.LogCaptureFixture, level: str) -> list[str]:
    set_level(level)
    async with FakeLlamaServer() as server:
        backend = http_backend("llama_server", server.url)
        try:
            await backend.count_tokens(["Evening, Aria."])
        finally:
            await backend.aclose()
    return [r.getMessage() for r in caplog.records if r.name.split(".")[0] in QUIET_LOGGERS]


async def test_http_request_lines_are_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    assert await http_lines(caplog, "INFO") == []


async def test_http_request_lines_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    assert any("HTTP Request: POST" in line for line in await http_lines(caplog, "DEBUG"))


async def test_a_console_reply_through_a_server_logs_no_requests(tmp_path: Path) -> None:
    async with FakeLlamaServer() as server:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"backend: {{type: llama_server, url: '{server.url}'}}\n"
            f"characters_dir: '{ROOT / 'characters'}'\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "chat", "--config", str(config), "--message", "What's good?",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    log = err.decode()
    assert process.returncode == 0, log
    assert out.decode().strip()
    assert "HTTP Request" not in log
    assert "Reply as" not in log  # the console shows the reply itself


def test_the_console_keeps_reply_lines_for_debug() -> None:
    set_level("INFO", replies=False)
    assert not logging.getLogger(REPLIES).isEnabledFor(logging.INFO)
    set_level("DEBUG", replies=False)
    assert logging.getLogger(REPLIES).isEnabledFor(logging.INFO)
