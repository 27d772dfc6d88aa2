"""``python -m bot chat`` and ``check`` as a user runs them: real model, real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent
CARD = """\
name: Aria
persona: Aria runs the Copper Kettle tavern. Warm, quick-witted, teases regulars.
scenario: Evening at the Copper Kettle.
greeting: "Welcome to the Copper Kettle, {{user}}!"
example_dialogue: |
  <START>
  {{user}}: What's on the menu?
  {{char}}: Mutton stew and fresh bread. The stew's the safe bet.
"""
OTHER = """\
name: Brass
persona: A gruff airship captain.
greeting: "Mind the gears."
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cards = tmp_path / "characters"
    cards.mkdir()
    (cards / "aria.yaml").write_text(CARD)
    (cards / "brass.yaml").write_text(OTHER)
    path = tmp_path / "config.yaml"
    path.write_text(
        "characters_dir: characters\ndefault_character: Aria\n"
        "backend: {n_ctx: 2048, seed: 7}\nprompt: {max_reply_tokens: 40, user_name: Bob}\n"
    )
    return path


def bot(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, capture_output=True, text=True, timeout=180, **kwargs
    )


def test_one_shot_message_prints_a_reply(config: Path) -> None:
    result = bot("chat", "--config", str(config), "--message", "Hi Aria! What's good tonight?")
    assert result.returncode == 0, result.stderr
    reply = result.stdout.strip()
    assert reply and "[Bob]" not in reply and "\n[" not in reply


def test_unknown_character_is_a_clear_error(config: Path) -> None:
    result = bot("chat", "--config", str(config), "--character", "Nobody", "--message", "hi")
    assert result.returncode == 2
    assert "no character named 'Nobody'" in result.stderr and "Aria" in result.stderr


def test_interactive_session_commands(config: Path) -> None:
    script = "\n".join([
        "Evening! What's on the menu?",
        "",  # re-roll
        "<Well, tonight",
        "!!Aria is in a hurry.",
        "/stats",
        "/character Brass",
        "/quit",
    ]) + "\n"
    result = bot("chat", "--config", str(config), input=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Aria: Welcome to the Copper Kettle, Bob!" in out
    assert "Aria: Well, tonight" in out
    assert "(note added)" in out
    assert "context used:" in out and "tokens/s" in out
    assert "Brass: Mind the gears." in out


def test_ctrl_c_interrupts_a_reply_and_the_chat_goes_on(config: Path, tmp_path: Path) -> None:
    long = tmp_path / "long.yaml"
    long.write_text(config.read_text().replace("max_reply_tokens: 40", "max_reply_tokens: 400"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--config", str(long)], cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdin and proc.stdout
    try:
        proc.stdin.write("<Let me tell you the whole long history of this tavern. It began\n")
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + 120
        while "It began" not in seen and time.monotonic() < deadline:
            seen += os.read(proc.stdout.fileno(), 4096).decode()
        time.sleep(0.2)  # the model is still reading the prompt or starting to write
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate("/quit\n", timeout=60)
    finally:
        proc.kill()
    assert "[interrupted]" in seen + out
    assert proc.returncode == 0


def test_check_reports_cards_and_backend(config: Path) -> None:
    (config.parent / "characters" / "broken.json").write_text("{not json")
    result = bot("check", "--config", str(config))
    assert "card: ok  Aria" in result.stdout
    assert "card: BAD" in result.stdout and "broken.json" in result.stdout
    assert "backend: ok" in result.stdout
    assert result.returncode == 1


def test_check_passes_on_the_shipped_example_config() -> None:
    result = bot("check", "--config", str(ROOT / "config.example.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all good" in result.stdout


def test_one_shot_message_in_a_scene_prints_each_character_turn(config: Path) -> None:
    result = bot("chat", "--config", str(config), "--cast", "Aria,Brass", "--message", "Brass, say hello to Aria.")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines and lines[0].startswith("Brass: ")
    assert all(line.split(": ", 1)[0] in ("Aria", "Brass") for line in lines)
    assert "[Bob]" not in result.stdout and "[Aria]" not in result.stdout
