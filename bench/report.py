"""RESULTS.md from a run: the machine, what was run, the tables, the targets met or missed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.machine import Machine
from bench.modes import BUDGET, HISTORY_TURNS, MODES, N_CTX, REPLY_TOKENS
from bench.overhead import Overhead
from bench.replay import Replay
from bench.stats import Summary, percentile, ratio

__all__ = ["Setting", "Report", "Target", "targets", "render", "final_lines"]


@dataclass(frozen=True)
class Setting:
    """One channel count: its replay and each mode's summaries.

    ``naive_same`` is Troupe restricted to the replies the naive mode ran, for like-for-like ratios.
    """

    replay: Replay
    troupe: Summary
    naive: Summary
    troupe_same: Summary


@dataclass(frozen=True)
class Report:
    """Everything RESULTS.md shows."""

    started: str
    minutes: float
    seed: int
    threads: int
    model: str
    character: str
    machine: Machine
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    settings: Sequence[Setting]
    overheads: Sequence[Overhead]


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether this run met it."""

    text: str
    measured: str
    met: bool


def _setting(report: Report, channels: int) -> Setting | None:
    return next((s for s in report.settings if len(s.replay.channels) == channels), None)


def troupe_over_ideal(setting: Setting) -> float:
    """Critical-path prompt tokens per reply, Troupe's mean over the ideal's."""
    return ratio(setting.troupe.evaluated_mean, setting.troupe.ideal_mean)


def naive_over_troupe_latency(setting: Setting) -> float:
    """Median reply latency, naive over Troupe, on the same replies."""
    return ratio(setting.naive.latency_median, setting.troupe_same.latency_median)


def targets(report: Report) -> list[Target]:
    """The issue's targets at a 2048-token budget, checked against this run."""
    found: list[Target] = []
    one, four = _setting(report, 1), _setting(report, 4)
    if one is not None:
        r = troupe_over_ideal(one)
        found.append(Target("prompt tokens on the critical path per reply <= 1.2x ideal, 1 channel",
                            f"{r:.2f}x (worst single reply {one.troupe.worst_over_ideal:.2f}x)", r <= 1.2))
    if four is not None:
        r = troupe_over_ideal(four)
        found.append(Target("prompt tokens on the critical path per reply <= 2x ideal, 4 channels",
                            f"{r:.2f}x (worst single reply {four.troupe.worst_over_ideal:.2f}x)", r <= 2.0))
    for setting in report.settings:
        channels = len(setting.replay.channels)
        r = naive_over_troupe_latency(setting)
        found.append(Target(f"median reply latency >= 3x lower than naive, {channels} channel(s)",
                            f"{r:.1f}x lower", r >= 3.0))
    for setting in report.settings:
        channels = len(setting.replay.channels)
        t = setting.troupe
        r = ratio(t.latency_p95, t.latency_median)
        found.append(Target(f"p95 latency <= 1.5x Troupe's own median, {channels} channel(s)",
                            f"{t.latency_p95:.2f} s / {t.latency_median:.2f} s = {r:.2f}x", r <= 1.5))
    for overhead in report.overheads:
        measured = f"not measured: {overhead.error}" if overhead.error else f"{overhead.median * 1000:.1f} ms"
        found.append(Target(
            f"bot overhead per reply < 20 ms median (history_messages {overhead.history_messages})",
            measured, not overhead.error and overhead.median < 0.020,
        ))
    return found


def final_lines(report: Report) -> list[str]:
    """The two lines ``make bench`` ends with (1 channel)."""
    one = _setting(report, 1)
    if one is None:
        return []
    return [
        f"prompt tokens per reply, troupe/ideal: {troupe_over_ideal(one):.2f}",
        f"median reply latency, naive/troupe: {naive_over_troupe_latency(one):.2f}",
    ]


def _f(value: float, digits: int = 0) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _s(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f} s"


def _replay_lines(report: Report) -> list[str]:
    lines = [
        "| channels | messages | mentions | backlog per channel | words per message: median / p95 / max "
        "| steady-state replies: troupe / naive |",
        "|---|---|---|---|---|---|",
    ]
    for s in report.settings:
        words = s.replay.words()
        lines.append(
            f"| {len(s.replay.channels)} | {len(s.replay.messages)} | {s.replay.mentions} "
            f"| {s.replay.backlog} "
            f"| {statistics.median(words):.0f} / {percentile(words, 95):.0f} / {max(words)} "
            f"| {s.troupe.n} / {s.naive.n} |"
        )
    return lines


def _mode_table(setting: Setting) -> list[str]:
    t, n = setting.troupe, setting.naive
    lines = [
        "| mode | replies | prompt size (mean) | read per reply, critical path: mean / p95 / max "
        "| incl. background (mean) | x ideal | reply latency: median / p95 | first text: median / p95 "
        "| prompt tok/s | gen tok/s | peak RSS | window shifts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in (t, n):
        lines.append(
            f"| {s.mode} | {s.n} | {_f(s.prompt_tokens_mean)} "
            f"| {_f(s.evaluated_mean)} / {_f(s.evaluated_p95)} "
            f"/ {_f(s.evaluated_max)} | {_f(s.total_mean)} | {_f(ratio(s.evaluated_mean, s.ideal_mean), 2)} "
            f"| {_s(s.latency_median)} / {_s(s.latency_p95)} | {_s(s.first_token_median)} / "
            f"{_s(s.first_token_p95)} | {_f(s.prompt_tps)} | {_f(s.generation_tps)} | {_f(s.peak_rss_mb)} MB "
            f"| {s.shifts} |"
        )
    lines.append(
        f"| ideal | {t.n} | | {_f(t.ideal_mean)} / {_f(t.ideal_p95)} / – | {_f(t.ideal_mean)} | 1.00 "
        "| | | | | | |"
    )
    return lines


def _ratio_lines(report: Report) -> list[str]:
    lines = [
        "| channels | troupe/ideal tokens (mean) | worst reply troupe/ideal | naive/troupe tokens | "
        "naive/troupe median latency | troupe p95/median latency | ideal tokens p95/median "
        "| troupe latency, replies that moved the window "
        "/ the others (median) | troupe latency after a channel switch / same channel (median) "
        "| saved KV states at end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.settings:
        t = s.troupe
        lines.append(
            f"| {len(s.replay.channels)} | {_f(troupe_over_ideal(s), 2)} | {_f(t.worst_over_ideal, 2)} "
            f"| {_f(ratio(s.naive.evaluated_mean, s.troupe_same.evaluated_mean), 1)} "
            f"| {_f(naive_over_troupe_latency(s), 1)} | {_f(ratio(t.latency_p95, t.latency_median), 2)} "
            f"| {_f(ratio(t.ideal_p95, t.ideal_median), 2)} "
            f"| {_s(t.latency_median_shifted)} ({t.shifts}) / {_s(t.latency_median_unshifted)} "
            f"| {_s(t.latency_median_switched)} ({t.switches}) / {_s(t.latency_median_same)} "
            f"| {_f(t.state_cache_mb, 1)} MB |"
        )
    return lines


def _spread_lines(report: Report) -> list[str]:
    lines = [
        "| channels | troupe critical path / floor: mean / worst reply | floor tokens: median / p95 (p95/median) "
        "| tokens generated: median / p95 | troupe latency: median / p95 (p95/median) |",
        "|---|---|---|---|---|",
    ]
    for s in report.settings:
        t = s.troupe
        lines.append(
            f"| {len(s.replay.channels)} | {_f(ratio(t.evaluated_mean, t.floor_mean), 2)} / "
            f"{_f(t.worst_over_floor, 2)} | {_f(t.floor_median)} / {_f(t.floor_p95)} "
            f"({_f(ratio(t.floor_p95, t.floor_median), 2)}) | {_f(t.generated_median)} / {_f(t.generated_p95)} "
            f"| {_s(t.latency_median)} / {_s(t.latency_p95)} ({_f(ratio(t.latency_p95, t.latency_median), 2)}) |"
        )
    return lines


def _warmup_lines(report: Report) -> list[str]:
    lines = [
        "| channels | mode | warm-up replies | read per warm-up reply (mean) | warm-up latency (median) "
        "| pre-warm and read-ahead | all tokens read in the run (with background and warm-ups) | generated "
        "| check: tokens llama.cpp decoded in the run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.settings:
        for m in (s.troupe, s.naive):
            lines.append(
                f"| {len(s.replay.channels)} | {m.mode} | {m.warmups} | {_f(m.warmup_evaluated_mean)} "
                f"| {_s(m.warmup_latency_median)} | {m.prewarm_tokens} tokens | {m.all_tokens} "
                f"| {m.generated_tokens} | {m.llama_decoded} |"
            )
    return lines


def _overhead_lines(report: Report) -> list[str]:
    lines = [
        "| history_messages (messages fetched per reply) | mentions | overhead: median / p95 "
        "| backend's own time to first token (median) |",
        "|---|---|---|---|",
    ]
    for o in report.overheads:
        if o.error:
            lines.append(f"| {o.history_messages} | – | not measured: {o.error} | – |")
            continue
        own = statistics.median(o.backend_seconds) if o.backend_seconds else math.nan
        lines.append(
            f"| {o.history_messages} ({min(200, 2 * o.history_messages)}) | {len(o.samples)} "
            f"| {o.median * 1000:.1f} ms / {o.p95 * 1000:.1f} ms | {own * 1000:.2f} ms |"
        )
    return lines


def render(report: Report) -> str:
    """The whole RESULTS.md."""
    found = targets(report)
    met = sum(t.met for t in found)
    out = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python -m bench`), run started {report.started}, took "
        f"{report.minutes:.1f} min, seed {report.seed}. Numbers are from that one run; see "
        "[README.md](README.md) for how to read them.",
        "",
        "## Machine",
        "",
        *report.machine.lines(),
        f"- Load average (1/5/15 min) before the run: {' / '.join(f'{x:.2f}' for x in report.load_before)}; "
        f"after: {' / '.join(f'{x:.2f}' for x in report.load_after)} (the machine is shared: other work "
        "running at the same time slows the model and shows here)",
        "",
        "## What was run",
        "",
        "- Model: the embedded backend (`LlamaCppBackend`, llama-cpp-python in process) with "
        f"{report.model}; `n_ctx` {N_CTX}, {report.threads} threads, greedy sampling, replies of at most "
        f"{REPLY_TOKENS} tokens.",
        f"- Prompt: `token_budget` {BUDGET}, `history_messages` {HISTORY_TURNS} (so the token budget, not a "
        f"message count, bounds the window), transcript format, character {report.character}.",
        "- Each reply goes through the real `ChatService` (prompt builder, stop enforcement, timings); the "
        "reply joins the channel's history as the character's turn.",
        *(f"- `{m.name}`: {m.description}." for m in MODES.values()),
        "- `ideal`: not run but counted: the tokens of the messages other people wrote since the channel's "
        "last reply, plus the prompt's tail (`[Aria]:` and any notes), tokenized by the model.",
        "- *Critical path*: prompt tokens the backend read between the message and the reply's first token "
        "(`Timings.prompt_evaluated`). *Incl. background*: plus the start-up pre-warm and the read-ahead of "
        "others' messages while the model was idle (Troupe reads a quiet channel before it is mentioned), "
        "spread over the replies. "
        "*Reply latency*: from asking the service for a reply to its last token; *first text*: to the first "
        "text after stop filtering. Peak RSS is each mode's own process (`ru_maxrss`).",
        "- Every channel starts with a backlog that fills the window; the first reply in each channel "
        "(the *warm-up*) reads it cold in both modes and is reported apart from the steady-state figures.",
        "- The naive mode costs about the same on every reply, so to keep the run short it plays only the "
        "first steady-state replies of the same replay; naive/troupe ratios compare those same replies.",
        "",
        "Replays (deterministic from the seed; one bot mention every 3–6 messages):",
        "",
        *_replay_lines(report),
        "",
        "## Results",
        "",
    ]
    for setting in report.settings:
        count = len(setting.replay.channels)
        out += [f"### {count} channel{'s' if count > 1 else ''}" + (" interleaved" if count > 1 else ""), "",
                *_mode_table(setting), ""]
    out += [
        "### Ratios", "", *_ratio_lines(report), "",
        "A reply's latency follows what it reads: compare Troupe's latency p95/median with the ideal's "
        "tokens p95/median (how uneven the new text per reply is in this replay), and the latency of "
        "replies that moved the window or switched channel with the others, to tell uneven input from "
        "re-read spikes. Per-reply records of the run are in `bench/out/` (not committed).", "",
        "### Where the latency spread comes from", "",
        "The *floor* of a reply is what any backend must read after the message that asks for it has "
        "arrived: that message and the prompt's tail (`[Aria]:`), counted like the ideal. A critical path "
        "of 1.00x the floor means Troupe read nothing else: no re-read, no catching up on others' messages. "
        "What is left of the spread in latency is the spread of the mentions' lengths (floor tokens) and "
        "of the replies' lengths (tokens generated), which no context strategy removes.", "",
        *_spread_lines(report), "",
        "### Warm-up and totals", "", *_warmup_lines(report), "",
        "The last column is llama.cpp's own count (its perf counters), independent of the backend's "
        "bookkeeping: it should equal the tokens read plus those generated, less about one per reply (the "
        "last token of a reply is sampled, never decoded).", "",
        "## Bot overhead per reply", "",
        "The real `TroupeBot` (discord.py, store, cogs, `ChatService`) against the local fake Discord "
        "(`tests/fakediscord`, loopback sockets, in the same process and event loop) with a scripted backend "
        "that answers at once. Overhead = time from a user's message arriving at the fake Discord to the "
        "backend's first token, minus the backend's own time (from `stream()` being called to that token); "
        "the first mention (cold start) is left out. It includes the fake Discord's own work (gateway event, "
        "serving the history pages) and, as a scripted backend counts tokens asynchronously, the prompt is "
        "built twice (the embedded backend's synchronous tokenizer needs one pass).",
        "",
        *_overhead_lines(report),
        "",
        f"## Targets ({met} of {len(found)} met)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {t.text} | {t.measured} | {'yes' if t.met else '**no**'} |" for t in found),
        "",
        "Token counts are deterministic for a seed (greedy replies, same code); latencies and the overhead "
        "depend on the machine's load during the run, so figures near a threshold can land on either side "
        "of it from one run to the next.",
        "",
        "The run ended with:",
        "",
        "```",
        *final_lines(report),
        "```",
        "",
    ]
    return "\n".join(out)
