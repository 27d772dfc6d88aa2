"""``python -m bot check`` reaches the configured store, runs its migrations and reports it,
with the password redacted."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from old_stores import OLD_SCHEMAS

from bot.commands import check_store
from bot.config import parse_config
from bot.store.migrations import LATEST

ROOT = Path(__file__).resolve().parent.parent


async def test_check_reports_the_postgresql_store_it_reached_without_the_password(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_url.replace("postgres:@", "postgres:s3cret-pw@")
    assert await check_store(parse_config({"store": {"url": url}}))
    out = capsys.readouterr().out
    assert out.startswith("store: ok  postgresql://postgres:***@") and "PostgreSQL 18" in out
    assert f"schema version {LATEST}" in out and "s3cret-pw" not in out


async def test_check_upgrades_an_old_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(tmp_path / "troupe.db") as db:
        db.executescript(OLD_SCHEMAS["v1"])
    assert await check_store(parse_config({}, source=tmp_path / "config.yaml"))
    assert f"schema version {LATEST})" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "troupe.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST


async def test_check_leaves_a_missing_sqlite_file_for_the_first_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await check_store(parse_config({}, source=tmp_path / "config.yaml"))
    assert "created at first start" in capsys.readouterr().out
    assert not (tmp_path / "troupe.db").exists()


async def test_check_counts_an_unreachable_store_as_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://troupe:s3cret-pw@/troupe?host={tmp_path}"  # no server there
    assert not await check_store(parse_config({"store": {"url": url}}))
    out = capsys.readouterr().out
    assert out.startswith("store: BAD store unreachable (postgresql://troupe:***@") and "s3cret-pw" not in out


def test_the_check_command_prints_the_store_line(postgres_url: str, tmp_path: Path) -> None:
    (tmp_path / "characters").mkdir()
    (tmp_path / "characters" / "aria.yaml").write_text("name: Aria\npersona: A tavern keeper.\n")
    config = tmp_path / "config.yaml"
    url = postgres_url.replace("postgres:@", "postgres:${TROUPE_TEST_PG_PASSWORD}@")
    config.write_text(
        "backend: {type: openai, url: 'http://127.0.0.1:9', connect_timeout: 1, retries: 0}\n"
        f"store: {{url: '{url}'}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--config", str(config)], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**os.environ, "TROUPE_TEST_PG_PASSWORD": "s3cret-pw"},
    )
    assert "store: ok  postgresql://postgres:***@" in result.stdout, result.stdout + result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
