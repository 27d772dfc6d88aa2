"""Prometheus metrics for one bot process, and the watchers that feed the gauges.

:class:`Metrics` owns its own registry (nothing global, so several bots in one process, as in
the tests, each have theirs). The Responder, the chat cog and the app call its ``reply_*``
methods with plain values; the gauges (queue depth, gateway latency) are read when scraped
from callables the app hands in. :class:`BackendWatch` probes each backend (each member of a
pool) on a timer, for ``troupe_backend_up`` and for ``/readyz``; :func:`loop_lag_monitor`
measures how late the event loop runs its timers. Every series has a ``shard`` label: a
reply's is its server's shard, a process-wide series carries the shards the process runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.backends.base import Backend, Timings
from bot.looplag import LoopLag

__all__ = ["Metrics", "BackendWatch", "loop_lag_monitor", "MemberHealth", "OUTCOMES", "shard_label"]

log = logging.getLogger(__name__)

#: what became of a message the bot was asked to answer
OUTCOMES = ("answered", "busy", "cooldown", "error", "empty")

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
_LAG = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SPEED = (1, 2, 5, 10, 20, 40, 80, 160, 320)
_FRACTION = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def shard_label(shards: Iterable[int] | None) -> str:
    """The ``shard`` label of a process running these shards (``"0"``, ``"0,1"``; ``"0"`` unsharded)."""
    ids = sorted(set(shards or ()))
    return ",".join(str(i) for i in ids) if ids else "0"


class Metrics:
    """The bot's metric families, in a registry of its own; :meth:`render` is the scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.replies = Counter("troupe_replies", "Messages the bot was asked to answer, by outcome",
                               ["shard", "outcome"], registry=r)
        self.first_text = Histogram("troupe_reply_first_text_seconds",
                                    "From starting a reply to its first text on Discord", ["shard"],
                                    buckets=_SECONDS, registry=r)
        self.last_edit = Histogram("troupe_reply_last_edit_seconds",
                                   "From starting a reply to its last edit on Discord", ["shard"],
                                   buckets=_SECONDS, registry=r)
        self.prompt_tokens = Counter("troupe_prompt_tokens", "Prompt tokens sent (the prompt's size)",
                                     ["shard"], registry=r)
        self.prompt_evaluated = Counter("troupe_prompt_tokens_evaluated",
                                        "Prompt tokens the backend had to read (the rest came from its cache)",
                                        ["shard"], registry=r)
        self.evaluated_fraction = Histogram("troupe_prompt_evaluated_fraction",
                                            "Per reply: prompt tokens evaluated / prompt size", ["shard"],
                                            buckets=_FRACTION, registry=r)
        self.generation_speed = Histogram("troupe_generation_tokens_per_second",
                                          "Per reply: generated tokens per second", ["shard"],
                                          buckets=_SPEED, registry=r)
        self.queue_depth = Gauge("troupe_queue_depth", "Replies waiting for their channel's turn",
                                 ["shard"], registry=r)
        self.gateway_latency = Gauge("troupe_gateway_latency_seconds",
                                     "Discord gateway heartbeat latency", ["shard"], registry=r)
        self.backend_up = Gauge("troupe_backend_up", "1 when the backend (pool member) answered its health check",
                                ["shard", "member"], registry=r)
        self.backend_latency = Histogram("troupe_backend_health_seconds",
                                         "How long the backend (pool member) took to answer its health check",
                                         ["shard", "member"], buckets=_SECONDS, registry=r)
        self.loop_lag = Histogram("troupe_event_loop_lag_seconds", "How late the event loop ran a timer",
                                  ["shard"], buckets=_LAG, registry=r)
        #: the process's own ``shard`` label (set once the shards are known)
        self.process_shard = "0"
        self._samplers: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ replies

    def reply_outcome(self, shard: int | str, outcome: str) -> None:
        """Count one message's outcome (one of :data:`OUTCOMES`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown reply outcome {outcome!r}")
        self.replies.labels(str(shard), outcome).inc()

    def reply_timed(self, shard: int | str, *, first_text: float | None, last_edit: float) -> None:
        """A finished reply's times on Discord (seconds from its start)."""
        if first_text is not None:
            self.first_text.labels(str(shard)).observe(first_text)
        self.last_edit.labels(str(shard)).observe(last_edit)

    def reply_costs(self, shard: int | str, timings: Timings | None) -> None:
        """A finished reply's prompt size, prompt tokens evaluated and generation speed."""
        if timings is None:
            return
        label = str(shard)
        if timings.prompt_tokens:
            self.prompt_tokens.labels(label).inc(timings.prompt_tokens)
            if timings.prompt_evaluated is not None:
                self.prompt_evaluated.labels(label).inc(timings.prompt_evaluated)
                self.evaluated_fraction.labels(label).observe(timings.prompt_evaluated / timings.prompt_tokens)
        speed = timings.generation_tokens_per_second
        if speed is not None:
            self.generation_speed.labels(label).observe(speed)

    # ------------------------------------------------------------------ gauges read at scrape time

    def sample_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from ``depth()`` at each scrape."""
        self._samplers.append(lambda: self.queue_depth.labels(self.process_shard).set(depth()))

    def sample_gateway(self, latencies: Callable[[], Sequence[tuple[int, float]]]) -> None:
        """Read ``(shard, seconds)`` gateway latencies at each scrape (unknown ones are skipped)."""
        def sample() -> None:
            for shard, seconds in latencies():
                if seconds == seconds and seconds != float("inf"):  # NaN / inf before the first heartbeat
                    self.gateway_latency.labels(str(shard)).set(seconds)
        self._samplers.append(sample)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        for sample in self._samplers:
            try:
                sample()
            except Exception:  # a scrape must not fail because one gauge could not be read
                log.exception("Could not read a metric")
        return generate_latest(self.registry)


@dataclass
class MemberHealth:
    """A backend's (pool member's) last health check."""

    name: str
    ok: bool | None = None  # None until first checked
    seconds: float = 0.0
    detail: str = ""


class BackendWatch:
    """Checks each backend (each member of a pool) every ``interval`` seconds; run :meth:`run` as a task."""

    def __init__(self, backends: Sequence[Backend], metrics: Metrics | None = None, *,
                 interval: float = 10.0, timeout: float = 5.0) -> None:
        self.backends = list(backends)
        self.metrics = metrics
        self.interval = interval
        self.timeout = timeout
        self.members = [MemberHealth(backend.name) for backend in self.backends]

    def healthy(self) -> bool:
        """Whether at least one backend passed its last check."""
        return any(member.ok for member in self.members)

    async def check(self) -> None:
        """Check every backend once, now."""
        await asyncio.gather(*(self._check(b, m) for b, m in zip(self.backends, self.members)))

    async def _check(self, backend: Backend, member: MemberHealth) -> None:
        started = time.perf_counter()
        try:
            health = await asyncio.wait_for(backend.health(), self.timeout)
            ok, detail = health.ok, health.detail
        except asyncio.TimeoutError:
            ok, detail = False, f"no health answer within {self.timeout:g} s"
        except Exception as exc:  # health() should not raise; a watch outlives one that does
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        member.seconds = time.perf_counter() - started
        if ok != member.ok and member.ok is not None:
            log.info("Backend %s is %s%s", member.name, "up" if ok else "down", "" if ok else f": {detail}")
        member.ok, member.detail = ok, detail
        if self.metrics is not None:
            shard = self.metrics.process_shard
            self.metrics.backend_up.labels(shard, member.name).set(1 if ok else 0)
            self.metrics.backend_latency.labels(shard, member.name).observe(member.seconds)

    async def run(self) -> None:
        """Check now and then every ``interval`` seconds, until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)


def loop_lag_monitor(metrics: Metrics, interval: float = 0.25) -> LoopLag:
    """A :class:`bot.looplag.LoopLag` that feeds ``troupe_event_loop_lag_seconds`` (run it as a task)."""
    return LoopLag(interval, observe=metrics.loop_lag.labels(metrics.process_shard).observe)
