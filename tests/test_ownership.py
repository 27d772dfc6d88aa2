"""A store the bot cannot write: the error names the uid to give the folder to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from privileges import without_root_powers

from bot.ownership import write_hint

ROOT = Path(__file__).resolve().parent.parent


def run_as_bot(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*without_root_powers(), sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_a_folder_the_bot_can_write_needs_no_hint(tmp_path: Path) -> None:
    assert write_hint(tmp_path / "troupe.db") == ""


def test_a_folder_owned_by_someone_else_is_named_with_the_uid_to_chown_it_to(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    result = run_as_bot("-c", f"from pathlib import Path; from bot.ownership import write_hint; "
                              f"print(write_hint(Path('{data}/troupe.db')))")
    uid, gid = os.getuid(), os.getgid()
    owner = data.stat()
    instead = f", or run the bot as uid {owner.st_uid}" if owner.st_uid != 0 else ""  # never "run as root"
    assert result.stdout.strip() == (
        f"; {data} belongs to uid {owner.st_uid} (gid {owner.st_gid}) and the bot runs as uid {uid} (gid {gid}): "
        f"chown -R {uid}:{gid} the folder mounted there{instead}"
    ), result.stderr


def test_bot_started_on_a_store_folder_it_cannot_write_says_whom_to_chown_it_to(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"characters_dir: {ROOT / 'characters'}\n"
        "backend: {type: openai, url: 'http://127.0.0.1:9', n_ctx: 4096}\n"
        f"store: {{path: {data / 'troupe.db'}}}\n"
        "discord: {token: 'MTIz.abc.def', api_url: 'http://127.0.0.1:9/api/v10'}\n"
    )
    result = run_as_bot("-m", "bot", "run", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert f"error: cannot open the store sqlite:///{data / 'troupe.db'}: unable to open database file; " in result.stderr
    assert f"chown -R {os.getuid()}:{os.getgid()}" in result.stderr
