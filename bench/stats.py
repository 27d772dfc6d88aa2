"""Summaries of a mode's run: means, medians and 95th percentiles of what replies cost."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.driver import ModeRun, ReplyRecord

__all__ = ["percentile", "Summary", "summarise", "ratio"]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when undefined."""
    if denominator == 0 or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


@dataclass(frozen=True)
class Summary:
    """One mode's steady-state replies (warm-ups apart), optionally only the first ``n``."""

    mode: str
    channels: int
    n: int
    evaluated_mean: float
    evaluated_p95: float
    evaluated_max: float
    total_mean: float
    ideal_mean: float
    ideal_median: float
    ideal_p95: float
    worst_over_ideal: float
    floor_mean: float
    floor_median: float
    floor_p95: float
    worst_over_floor: float
    generated_median: float
    generated_p95: float
    latency_median: float
    latency_p95: float
    first_token_median: float
    first_token_p95: float
    prompt_tokens_mean: float
    prompt_tps: float
    generation_tps: float
    shifts: int
    latency_median_shifted: float
    latency_median_unshifted: float
    switches: int
    latency_median_switched: float
    latency_median_same: float
    warmups: int
    warmup_evaluated_mean: float
    warmup_latency_median: float
    prewarm_tokens: int
    all_tokens: int
    generated_tokens: int
    llama_decoded: int
    peak_rss_mb: float
    state_cache_mb: float


def summarise(run: ModeRun, *, first: int | None = None) -> Summary:
    """The figures of ``run``; with ``first``, of its first ``first`` steady-state replies only.

    ``total_mean`` adds the background work (the start-up pre-warm) spread over the
    steady-state replies; ``all_tokens`` is every token read in the run, warm-ups included.
    """
    replies: list[ReplyRecord] = run.measured[:first] if first is not None else run.measured
    warmups = [r for r in run.replies if r.warmup]
    evaluated = [r.evaluated for r in replies]
    n = len(replies)
    return Summary(
        mode=run.mode,
        channels=run.channels,
        n=n,
        evaluated_mean=_mean(evaluated),
        evaluated_p95=percentile(evaluated, 95),
        evaluated_max=max(evaluated, default=math.nan),
        total_mean=ratio(sum(evaluated) + run.prewarm_tokens, n),
        ideal_mean=_mean([r.ideal for r in replies]),
        ideal_median=_median([r.ideal for r in replies]),
        ideal_p95=percentile([r.ideal for r in replies], 95),
        worst_over_ideal=max((r.evaluated / r.ideal for r in replies if r.ideal), default=math.nan),
        floor_mean=_mean([r.floor for r in replies]),
        floor_median=_median([r.floor for r in replies]),
        floor_p95=percentile([r.floor for r in replies], 95),
        worst_over_floor=max((r.evaluated / r.floor for r in replies if r.floor), default=math.nan),
        generated_median=_median([r.generated for r in replies]),
        generated_p95=percentile([r.generated for r in replies], 95),
        latency_median=_median([r.latency for r in replies]),
        latency_p95=percentile([r.latency for r in replies], 95),
        first_token_median=_median([r.first_token for r in replies]),
        first_token_p95=percentile([r.first_token for r in replies], 95),
        prompt_tokens_mean=_mean([r.prompt_tokens for r in replies]),
        prompt_tps=ratio(sum(evaluated), sum(r.prompt_seconds for r in replies)),
        generation_tps=ratio(sum(r.generated for r in replies), sum(r.generation_seconds for r in replies)),
        shifts=sum(r.shifted for r in replies),
        latency_median_shifted=_median([r.latency for r in replies if r.shifted]),
        latency_median_unshifted=_median([r.latency for r in replies if not r.shifted]),
        switches=sum(r.switched for r in replies),
        latency_median_switched=_median([r.latency for r in replies if r.switched]),
        latency_median_same=_median([r.latency for r in replies if not r.switched]),
        warmups=len(warmups),
        warmup_evaluated_mean=_mean([r.evaluated for r in warmups]),
        warmup_latency_median=_median([r.latency for r in warmups]),
        prewarm_tokens=run.prewarm_tokens,
        all_tokens=sum(r.evaluated for r in run.replies) + run.prewarm_tokens,
        generated_tokens=sum(r.generated for r in run.replies),
        llama_decoded=run.llama_decoded,
        peak_rss_mb=run.peak_rss_mb,
        state_cache_mb=run.state_cache_mb,
    )
