"""``python -m bench``: run every mode on 1, 2 and 4 channels, measure the bot's overhead, write RESULTS.md.

Each mode runs in its own process (``python -m bench.worker``) so its peak memory
is its own and no KV cache carries over between modes. The run ends by printing::

    prompt tokens per reply, troupe/ideal: <ratio>
    median reply latency, naive/troupe: <ratio>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bot.backends.model_files import default_model_path
from bot.cards import load_card

from bench.driver import ModeRun
from bench.machine import describe_machine, load_average
from bench.overhead import Overhead, measure_overhead
from bench.replay import generate_replay
from bench.report import Report, Setting, final_lines, render
from bench.soak_report import keep_section
from bench.stats import summarise
from bench.worker import load_run

__all__ = ["Scenario", "SCENARIOS", "main"]

ROOT = Path(__file__).resolve().parent.parent

_WORKER_TIMEOUT = 1800.0  # seconds; a stuck worker must not hang `make bench`


@dataclass(frozen=True)
class Scenario:
    """One channel count: mentions per channel (the first is the warm-up) and the naive mode's share."""

    channels: int
    mentions_per_channel: int
    naive_replies: int

    def scaled(self, factor: float) -> Scenario:
        """Fewer (or more) replies, keeping at least two steady-state ones per channel."""
        return Scenario(
            self.channels,
            max(3, round(self.mentions_per_channel * factor)),
            max(2, round(self.naive_replies * factor)),
        )


#: sized so the whole run takes about 10 minutes on 2 cores (the naive mode dominates); 80 steady-state
#: Troupe replies per channel count keep its p95 latency (the 76th of 80) from resting on one or two replies
SCENARIOS = (Scenario(1, 81, 20), Scenario(2, 41, 8), Scenario(4, 21, 8))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=5, help="replay seed (default 5)")
    parser.add_argument("--backlog", type=int, default=80, help="messages before the first mention")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of replies (e.g. 0.3)")
    parser.add_argument("--channels", default="1,2,4", help="channel counts to run (default 1,2,4)")
    parser.add_argument("--model", default=None, help="GGUF path (default: the bundled Gemma 3 270M)")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: all CPUs)")
    parser.add_argument("--character", type=Path, default=ROOT / "characters" / "aria.yaml")
    parser.add_argument("--overhead-mentions", type=int, default=50)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


def _run_worker(mode: str, scenario: Scenario, args: argparse.Namespace, workdir: Path) -> ModeRun:
    out = workdir / f"{mode}-{scenario.channels}.json"
    command = [
        sys.executable, "-m", "bench.worker", "--mode", mode, "--channels", str(scenario.channels),
        "--seed", str(args.seed), "--backlog", str(args.backlog),
        "--mentions", str(scenario.mentions_per_channel), "--character", str(args.character),
        "--out", str(out),
    ]
    if mode == "naive":
        command += ["--limit", str(scenario.naive_replies)]
    if args.model:
        command += ["--model", args.model]
    if args.threads:
        command += ["--threads", str(args.threads)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=_WORKER_TIMEOUT)
    return load_run(out)


def _setting(scenario: Scenario, args: argparse.Namespace, workdir: Path, character_name: str) -> Setting:
    runs: dict[str, ModeRun] = {}
    for mode in ("troupe", "naive"):
        began = time.perf_counter()
        print(f"== {mode}, {scenario.channels} channel(s)", flush=True)
        runs[mode] = _run_worker(mode, scenario, args, workdir)
        print(f"   done in {time.perf_counter() - began:.0f} s", flush=True)
    replay = generate_replay(
        args.seed, channels=scenario.channels, backlog=args.backlog,
        mentions_per_channel=scenario.mentions_per_channel, bot_name=character_name,
    )
    naive = summarise(runs["naive"])
    return Setting(
        replay=replay, troupe=summarise(runs["troupe"]), naive=naive,
        troupe_same=summarise(runs["troupe"], first=naive.n),
    )


def _overheads(args: argparse.Namespace) -> list[Overhead]:
    results = []
    for history in (200, 30):  # the benchmark's setting, then the shipped default
        print(f"== bot overhead, history_messages {history}", flush=True)
        try:
            results.append(asyncio.run(measure_overhead(
                seed=args.seed, mentions=args.overhead_mentions, backlog=args.backlog,
                history_messages=history,
            )))
        except Exception as exc:  # the model results stand on their own; say what failed and go on
            logging.getLogger("bench").exception("The bot overhead could not be measured")
            results.append(Overhead(
                samples=(), backend_seconds=(), history_messages=history, error=f"{type(exc).__name__}: {exc}"
            ))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; write RESULTS.md; print the summary lines."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    started = datetime.now(timezone.utc)
    began = time.perf_counter()
    load_before = load_average()
    character = load_card(args.character)
    model = Path(args.model) if args.model else default_model_path()
    counts = [int(c) for c in args.channels.split(",") if c.strip()]
    scenarios = [s.scaled(args.scale) for s in SCENARIOS if s.channels in counts]
    known = {s.channels for s in SCENARIOS}
    scenarios += [Scenario(c, 11, 8).scaled(args.scale) for c in counts if c not in known]
    raw = ROOT / "bench" / "out"  # each worker's per-reply records, as JSON (not committed)
    raw.mkdir(exist_ok=True)
    settings = [_setting(s, args, raw, character.display_name) for s in scenarios]
    overheads = _overheads(args)
    report = Report(
        started=started.strftime("%Y-%m-%d %H:%M UTC"),
        minutes=(time.perf_counter() - began) / 60,
        seed=args.seed,
        threads=args.threads or len(os.sched_getaffinity(0)),
        model=f"`{model.name}` ({model.stat().st_size / 2**20:.0f} MB)",
        character=f"`{_relative(args.character)}` ({character.display_name})",
        machine=describe_machine(),
        load_before=load_before,
        load_after=load_average(),
        settings=settings,
        overheads=overheads,
    )
    previous = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(keep_section(render(report), previous), encoding="utf-8")  # the soak's section stays
    print(f"\nWrote {_relative(args.output)}\n", flush=True)
    _print_summary(report)
    for line in final_lines(report):
        print(line)
    return 0


def _print_summary(report: Report) -> None:
    for s in report.settings:
        for m in (s.troupe, s.naive):
            print(
                f"{len(s.replay.channels)} channel(s) {m.mode:>6}: {m.evaluated_mean:6.0f} tokens read per "
                f"reply (ideal {m.ideal_mean:.0f}), latency median {m.latency_median:.2f} s, "
                f"p95 {m.latency_p95:.2f} s"
            )
    for o in report.overheads:
        if o.error:
            print(f"bot overhead (history_messages {o.history_messages}): not measured ({o.error})")
            continue
        print(f"bot overhead (history_messages {o.history_messages}): median {o.median * 1000:.1f} ms, "
              f"p95 {o.p95 * 1000:.1f} ms")
    if any(math.isnan(s.troupe.evaluated_mean) for s in report.settings):
        print("some settings had no steady-state replies: raise --scale")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
