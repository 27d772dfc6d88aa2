"""The soak's figures, its targets, and its section of ``bench/RESULTS.md``.

The section sits between two markers, so a new soak replaces only its own section and
``python -m bench`` (which rewrites the rest of the file) keeps it.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.soak import SoakRun

__all__ = ["SoakReport", "render_section", "write_section", "keep_section", "START", "END",
           "RSS_GROWTH_TARGET_MB", "LAG_TARGET_MS"]

START = "<!-- soak:start (written by python -m bench.soak) -->"
END = "<!-- soak:end -->"
RSS_GROWTH_TARGET_MB = 20.0  # between minute 5 and the end
LAG_TARGET_MS = 250.0
CHECKPOINTS = (1, 5, 15, 30)


@dataclass(frozen=True)
class SoakReport:
    """The figures of one run."""

    run: SoakRun
    rss_at: dict[float, float]  # minute -> MB (the sample nearest that minute)
    rss_end: float
    growth_from: float  # the minute growth is measured from (5, or 1 for short runs)
    growth_mb: float
    worst_lag_ms: float
    worst_lag_minute: float
    lag_over: dict[int, int]  # threshold ms -> seconds whose worst lag passed it
    lag_p99_ms: float
    worst_own_ms: float
    worst_own_minute: float
    own_over: dict[int, int]
    worst_gc_ms: float
    worst_gc_minute: float
    sent: int
    answered: int
    turned_away: dict[str, int]
    lost: int
    wrong_channel: int
    latency_p50: float | None
    latency_p95: float | None
    errors: list[tuple[str, str, int, int]]  # method, route, status, count (status >= 400)
    cpu_share: float  # of one core, over the load

    @classmethod
    def of(cls, run: SoakRun) -> SoakReport:
        """Work the figures out of a run."""
        minutes = run.settings.minutes
        load_samples = [s for s in run.samples if s.at <= minutes * 60 + run.settings.sample_every] or run.samples
        if not load_samples:
            raise RuntimeError("the soak took no samples (did the bot start?)")

        def rss_near(minute: float) -> float:
            return min(load_samples, key=lambda s: abs(s.at - minute * 60)).rss_mb

        checkpoints = [m for m in CHECKPOINTS if m <= minutes + 1e-9]
        end = load_samples[-1]
        growth_from = 5.0 if minutes > 5 else 1.0
        lag = [s for s in run.lag if s.at >= run.load_start]
        worst = max(lag, key=lambda s: s.lag_ms) if lag else None
        values = sorted(s.lag_ms for s in lag)
        worst_own = max(lag, key=lambda s: s.own_ms) if lag else None
        worst_gc = max(lag, key=lambda s: s.gc_ms) if lag else None
        outcomes = run.outcomes
        assert outcomes is not None
        latencies = sorted(run.latencies)
        first = load_samples[0]
        return cls(
            run=run,
            rss_at={m: rss_near(m) for m in checkpoints},
            rss_end=end.rss_mb,
            growth_from=growth_from,
            growth_mb=end.rss_mb - rss_near(growth_from),
            worst_lag_ms=worst.lag_ms if worst else 0.0,
            worst_lag_minute=(worst.at - run.load_start) / 60 if worst else 0.0,
            lag_over={t: sum(1 for v in values if v > t) for t in (50, 100, 250)},
            lag_p99_ms=values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0,
            worst_own_ms=worst_own.own_ms if worst_own else 0.0,
            worst_own_minute=(worst_own.at - run.load_start) / 60 if worst_own else 0.0,
            own_over={t: sum(1 for s in lag if s.own_ms > t) for t in (50, 100, 250)},
            worst_gc_ms=worst_gc.gc_ms if worst_gc else 0.0,
            worst_gc_minute=(worst_gc.at - run.load_start) / 60 if worst_gc else 0.0,
            sent=outcomes.sent,
            answered=outcomes.answered,
            turned_away=dict(outcomes.turned_away),
            lost=outcomes.unresolved,
            wrong_channel=outcomes.wrong_channel,
            latency_p50=statistics.median(latencies) if latencies else None,
            latency_p95=latencies[int(len(latencies) * 0.95)] if latencies else None,
            errors=sorted(((m, r, s, n) for (m, r, s), n in run.tally.items() if s >= 400), key=lambda e: -e[3]),
            cpu_share=(end.cpu_seconds - first.cpu_seconds) / max(1e-9, end.at - first.at),
        )

    @property
    def met_targets(self) -> bool:
        """RSS growth and the loop lag of the bot's own making under target, nothing lost, no reply
        in a wrong channel, the fake asked only what it implements, and the bot stopped cleanly."""
        run = self.run
        return (self.growth_mb < RSS_GROWTH_TARGET_MB and self.worst_own_ms < LAG_TARGET_MS and self.lost == 0
                and self.wrong_channel == 0 and not run.unhandled and not run.crashes and run.stopped_cleanly)


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render_section(report: SoakReport) -> str:
    """The RESULTS.md section, markers included."""
    run, s = report.run, report.run.settings
    away = sum(report.turned_away.values())
    busy_cool = ", ".join(f"{emoji} {n}" for emoji, n in sorted(report.turned_away.items())) or "none"
    rss_row = " | ".join(f"{report.rss_at[m]:.1f}" for m in report.rss_at)
    lines = [
        START,
        f"## Soak: the bot as its own process, {s.minutes:g} minutes under load",
        "",
        f"Written by `python -m bench.soak --minutes {s.minutes:g}`, run started {run.started}. "
        f"The bot (`python -m bot run`, its own process) against the fake Discord and the fake "
        f"OpenAI-compatible model server (both in the driver's process): {s.channels} channels in "
        f"{s.guilds} servers, {s.users} users, a mention every 0-40 ms (the load test's rate), "
        f"`user_cooldown` {s.user_cooldown:g} s, `queue_size` {s.queue_size}, `edit_interval` "
        f"{s.edit_interval:g} s, replies by webhook; the fake Discord's rate limit (5 creates+edits per "
        f"channel per 5 s) as Discord's. RSS is the bot process's VmRSS; loop lag is how late a 20 ms "
        f"timer in the bot's event loop fired (`bot/looplag.py`, the worst of each second).",
        "",
        f"- Machine: {len(os.sched_getaffinity(0))} cores shared with other work; load average "
        f"(1/5/15 min) {'/'.join(f'{v:.2f}' for v in run.load_before)} at the start, "
        f"{'/'.join(f'{v:.2f}' for v in run.load_after)} at the end. The bot used "
        f"{report.cpu_share * 100:.0f}% of one core.",
        "",
        "| minute | " + " | ".join(f"{m:g}" for m in report.rss_at) + " | end |",
        "|---|" + "---|" * (len(report.rss_at) + 1),
        f"| bot RSS (MB) | {rss_row} | {report.rss_end:.1f} |",
        "",
        f"- RSS growth from minute {report.growth_from:g} to the end: {report.growth_mb:+.1f} MB "
        f"(target < {RSS_GROWTH_TARGET_MB:g} MB: {_mark(report.growth_mb < RSS_GROWTH_TARGET_MB)}).",
        f"- Largest loop lag: {report.worst_lag_ms:.0f} ms, at minute {report.worst_lag_minute:.1f} "
        f"({_mark(report.worst_lag_ms < LAG_TARGET_MS)} against {LAG_TARGET_MS:g} ms); 99th percentile of "
        f"the per-second worst: {report.lag_p99_ms:.0f} ms; seconds with a lag over 50 / 100 / 250 ms: "
        + " / ".join(str(report.lag_over[t]) for t in (50, 100, 250)) + ". This is wall-clock time, so it "
        "includes the time the machine gave the bot no CPU (see the load average).",
        f"- The part of a lag the bot spent running its own code (the process's CPU time in the late "
        f"tick): at most {report.worst_own_ms:.0f} ms, at minute {report.worst_own_minute:.1f} (target < "
        f"{LAG_TARGET_MS:g} ms: {_mark(report.worst_own_ms < LAG_TARGET_MS)}); seconds over 50 / 100 / 250 ms: "
        + " / ".join(str(report.own_over[t]) for t in (50, 100, 250)) + f". The longest garbage collection: "
        f"{report.worst_gc_ms:.0f} ms, at minute {report.worst_gc_minute:.1f}.",
        f"- Mentions: {report.sent} sent, {report.answered} answered, {away} turned away ({busy_cool}), "
        f"{report.lost} lost, {report.wrong_channel} answered in the wrong channel.",
    ]
    if report.latency_p50 is not None and report.latency_p95 is not None:
        lines.append(f"- Mention to its complete reply: median {report.latency_p50:.2f} s, "
                     f"95th percentile {report.latency_p95:.2f} s (Discord's rate limit sets the pace).")
    errors = ", ".join(f"{m} {r} {st}: {n}" for m, r, st, n in report.errors) or "none"
    lines += [
        f"- Fake Discord: {run.rate_limited} answers 429; error answers by route: {errors}; "
        f"unhandled requests: {len(run.unhandled)}; crashes: {len(run.crashes)}.",
        f"- SIGTERM at the end: {'stopped cleanly' if run.stopped_cleanly else f'**exit code {run.exit_code}**'}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def keep_section(new_text: str, old_text: str) -> str:
    """``new_text`` with the soak section of ``old_text`` (if any) appended, so rewriting the
    benchmark results does not lose the soak's."""
    start, end = old_text.find(START), old_text.find(END)
    if start < 0 or end < start or START in new_text:
        return new_text
    return new_text.rstrip("\n") + "\n\n" + old_text[start:end + len(END)] + "\n"


def write_section(path: Path, section: str) -> None:
    """Put ``section`` into ``path``: in place of the previous soak section, else at the end."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find(START), text.find(END)
    if 0 <= start < end:
        text = text[:start] + section.rstrip("\n") + text[end + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
