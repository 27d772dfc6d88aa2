"""``python -m bench.soak``: the real bot as its own process under the load test's load for a
long time, to see whether its memory levels off and its event loop keeps up.

Three parties, two processes:

- this process runs the strict fake Discord (``tests/fakediscord``, its own bookkeeping
  bounded) and the fake OpenAI-compatible model server (``tests/fakes/openai.py``, which
  answers ``ack <channel>-<n>`` to the newest tagged message of each prompt), and plays
  users: mentions in ``--channels`` channels by ``--users`` users at the load test's rate
  (one every 0-40 ms, about 50 a second);
- the bot runs as ``python -m bot run`` with a config pointing at both, and appends its
  event-loop lag to ``TROUPE_LAG_LOG`` once a second.

Every few seconds it samples the bot process's RSS and CPU time from ``/proc``. At the
end it reports RSS at minutes 1, 5, 15 and 30, the largest loop lag and when, how many
mentions were answered, turned away (busy or cooldown reaction) or lost, then stops the
bot with SIGTERM and writes a section of ``bench/RESULTS.md`` (``--no-write`` to skip).
Not part of ``make test``: a run takes as long as ``--minutes`` says.

    python -m bench.soak --minutes 30
    python -m bench.soak --minutes 3 --no-write     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.machine import load_average
from bench.soak_observe import LagSample, Outcomes, ProcessSampler, Sample, ack_for
from bench.soak_report import SoakReport, render_section, write_section

__all__ = ["SoakSettings", "run_soak", "main"]

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.soak")

_CONNECT_TIMEOUT = 120.0  # seconds for the bot to start, connect and sync its commands
_STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class SoakSettings:
    """What to run: the load test's defaults."""

    minutes: float = 30.0
    channels: int = 20
    users: int = 50
    guilds: int = 2
    seed: int = 11
    user_cooldown: float = 2.0
    queue_size: int = 2
    edit_interval: float = 1.0
    sample_every: float = 5.0
    settle: float = 60.0  # seconds after the load for the last mentions to be answered
    keep_messages: int = 500  # per channel, in the fake Discord
    asyncio_debug: bool = False  # run the bot with PYTHONASYNCIODEBUG=1 (slow callbacks named in its log)
    workdir: Path | None = None


@dataclass
class SoakRun:
    """Everything measured, for the report."""

    settings: SoakSettings
    started: str
    samples: list[Sample] = field(default_factory=list)
    lag: list[LagSample] = field(default_factory=list)
    load_start: float = 0.0  # unix time the load began
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    outcomes: Outcomes | None = None
    latencies: list[float] = field(default_factory=list)
    rate_limited: int = 0
    tally: dict[tuple[str, str, int], int] = field(default_factory=dict)
    unhandled: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stopped_cleanly: bool = False
    bot_log_tail: str = ""
    driver_rss_mb: float = 0.0
    workdir: str = ""


def _import_fakes() -> tuple[Any, Any]:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)  # the fake Discord lives with the tests
    from fakediscord import FakeDiscord

    from tests.fakes.openai import FakeOpenAIServer

    return FakeDiscord, FakeOpenAIServer


def write_config(workdir: Path, *, api_url: str, gateway_url: str, model_url: str, settings: SoakSettings) -> Path:
    """The bot's config: the bundled characters, a fresh store, the fakes' addresses."""
    config = {
        "characters_dir": str(ROOT / "characters"),
        "default_character": "Aria",
        "store": {"path": str(workdir / "troupe.db")},
        "backend": {"type": "openai", "url": model_url, "n_ctx": 4096},
        "discord": {
            "token": "${DISCORD_TOKEN}", "api_url": api_url, "gateway_url": gateway_url,
            "user_cooldown": settings.user_cooldown, "queue_size": settings.queue_size,
            "edit_interval": settings.edit_interval,
        },
    }
    path = workdir / "config.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    return path


async def _start_bot(
    config: Path, token: str, lag_log: Path, log_file: Any, *, asyncio_debug: bool = False
) -> asyncio.subprocess.Process:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "DISCORD_TOKEN": token, "TROUPE_LAG_LOG": str(lag_log), "PYTHONUNBUFFERED": "1"}
    if asyncio_debug:  # asyncio then logs every callback that holds the loop for over 100 ms, with its name
        env["PYTHONASYNCIODEBUG"] = "1"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=log_file, stderr=log_file,
    )


async def run_soak(settings: SoakSettings) -> SoakRun:
    """Run the soak; returns what it measured (the bot is stopped at the end)."""
    FakeDiscord, FakeOpenAIServer = _import_fakes()
    run = SoakRun(settings=settings, started=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="troupe-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run.workdir = str(workdir)
    lag_log = workdir / "lag.log"
    lag_log.unlink(missing_ok=True)
    rng = random.Random(settings.seed)
    fake = FakeDiscord(heartbeat_interval=41.25)  # Discord's own interval
    fake.keep_at_most(messages_per_channel=settings.keep_messages, requests=5_000)
    model = FakeOpenAIServer(reply_for=ack_for, tokenize_extras=True, piece_delay=0.005)
    guilds = [fake.add_guild(f"server{g}") for g in range(settings.guilds)]
    rooms = [guilds[i % len(guilds)].add_text_channel(f"room{i}") for i in range(settings.channels)]
    people = [fake.add_user(f"user{u}") for u in range(settings.users)]
    for person in people:
        for guild in guilds:
            guild.add_member(person)
    outcomes = Outcomes(fake.bot_user.id, fake.is_from_bot)
    fake.world.subscribe(outcomes.on_event)
    run.outcomes = outcomes
    async with fake, model:
        config = write_config(workdir, api_url=fake.api_url, gateway_url=fake.gateway_url, model_url=model.url,
                              settings=settings)
        with (workdir / "bot.log").open("wb") as bot_log:
            bot = await _start_bot(config, fake.token, lag_log, bot_log, asyncio_debug=settings.asyncio_debug)
            try:
                await fake.wait_connected(timeout=_CONNECT_TIMEOUT)
                await fake.wait_for(lambda: fake.commands.all(), timeout=_CONNECT_TIMEOUT)
                await _drive(run, fake, model, bot.pid, rooms, people, rng, workdir)
            finally:
                run.exit_code, run.stopped_cleanly = await _stop(bot)
        run.bot_log_tail = _tail(workdir / "bot.log")
    run.rate_limited = len(fake.rate_limited)
    run.tally = dict(fake.api.tally)
    run.unhandled = [f"{r.method} {r.path}" for r in fake.unhandled]
    run.crashes = [f"{r.method} {r.path}: {exc!r}" for r, exc in fake.crashes]
    run.load_after = load_average()
    run.driver_rss_mb = ProcessSampler(os.getpid(), lag_log).rss_mb()
    return run


async def _drive(
    run: SoakRun, fake: Any, model: Any, pid: int, rooms: list[Any], people: list[Any], rng: random.Random,
    workdir: Path,
) -> None:
    settings = run.settings
    outcomes = run.outcomes
    assert outcomes is not None
    sampler = ProcessSampler(pid, workdir / "lag.log")
    sampler.new_lag()  # start-up lag is not the soak's
    run.load_before = load_average()
    run.load_start = time.time()
    started = time.monotonic()
    deadline = started + settings.minutes * 60
    series = (workdir / "samples.jsonl").open("w", encoding="utf-8")

    async def sample_forever() -> None:
        while True:
            await asyncio.sleep(settings.sample_every)
            sample = Sample(time.monotonic() - started, sampler.rss_mb(), sampler.cpu_seconds())
            run.samples.append(sample)
            run.lag.extend(sampler.new_lag())
            run.latencies.extend(outcomes.take_latencies())
            model.requests.clear()  # the fake model's request log is the driver's memory, not the bot's
            series.write(json.dumps({**asdict(sample), "sent": outcomes.sent, "answered": outcomes.answered,
                                     "turned_away": sum(outcomes.turned_away.values()),
                                     "unresolved": outcomes.unresolved, "load": load_average()[0]}) + "\n")
            series.flush()
            if len(run.samples) % max(1, round(60 / settings.sample_every)) == 0:
                log.info("minute %.0f: bot RSS %.1f MB, %d sent, %d answered, %d turned away, %d waiting",
                         sample.at / 60, sample.rss_mb, outcomes.sent, outcomes.answered,
                         sum(outcomes.turned_away.values()), outcomes.unresolved)

    sampling = asyncio.create_task(sample_forever())
    try:
        number = 0
        while time.monotonic() < deadline:
            room = rooms[rng.randrange(len(rooms))]
            message = await fake.user_says(room, rng.choice(people), f"load-{room.id}-{number} hi", mention_bot=True)
            outcomes.mentioned(room.id, number, message.id)
            number += 1
            await asyncio.sleep(rng.uniform(0.0, 0.04))
        settle_until = time.monotonic() + settings.settle
        while outcomes.unresolved and time.monotonic() < settle_until:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2 * settings.sample_every)  # the bot's last lag lines
    finally:
        sampling.cancel()
        series.close()
    run.lag.extend(sampler.new_lag())
    run.latencies.extend(outcomes.take_latencies())


async def _stop(bot: asyncio.subprocess.Process) -> tuple[int | None, bool]:
    if bot.returncode is not None:
        return bot.returncode, False
    bot.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(bot.wait(), _STOP_TIMEOUT)
    except asyncio.TimeoutError:
        bot.kill()
        await bot.wait()
        return None, False
    return code, code == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the summary, write the RESULTS.md section; non-zero if a target was missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the load runs (default 30)")
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, help="where the bot's config, store, log and samples go (default: a temp dir)")
    parser.add_argument("--asyncio-debug", action="store_true",
                        help="run the bot in asyncio's debug mode: its log names each callback that held the loop over 100 ms")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("fakediscord").setLevel(logging.ERROR)
    settings = SoakSettings(minutes=args.minutes, channels=args.channels, users=args.users, seed=args.seed,
                            workdir=args.workdir, asyncio_debug=args.asyncio_debug)
    run = asyncio.run(run_soak(settings))
    report = SoakReport.of(run)
    section = render_section(report)
    print(section)
    if not args.no_write:
        write_section(args.output, section)
        print(f"Wrote the soak section of {args.output}")
    return 0 if report.met_targets else 1


if __name__ == "__main__":
    sys.exit(main())
