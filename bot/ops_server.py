"""The operations listener (``metrics.listen``): ``/metrics``, ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the process runs. ``/readyz`` runs each readiness check
(connected to Discord, store reachable, a backend healthy) and answers 200 when all pass,
else 503; the body names each check's result either way. ``/metrics`` is Prometheus' text
format from :class:`bot.metrics.Metrics`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.errors import ConfigError
from bot.metrics import Metrics

__all__ = ["OpsServer", "parse_listen", "Check"]

log = logging.getLogger(__name__)

#: a readiness check: True when ready
Check = Callable[[], Awaitable[bool]]

_CHECK_TIMEOUT = 3.0  # seconds one readiness check may take before it counts as failed


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) as a host and a port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"metrics.listen: expected host:port (e.g. 127.0.0.1:9464), got {listen!r}")
    return host.strip("[]"), int(port)


class OpsServer:
    """Serves the metrics and health routes on ``host:port`` until :meth:`close`."""

    def __init__(self, metrics: Metrics, checks: Mapping[str, Check], *, host: str, port: int) -> None:
        self.metrics = metrics
        self.checks = dict(checks)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (port 0: any free port, then :attr:`port` says which)."""
        app = web.Application()
        app.add_routes([
            web.get("/metrics", self._metrics),
            web.get("/healthz", self._healthz),
            web.get("/readyz", self._readyz),
        ])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"metrics.listen: cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = runner.addresses[0][1]
        self._runner = runner
        log.info("Metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", self.host, self.port)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        status = dict(zip(names, results))
        ready = all(results)
        return web.json_response({"ready": ready, "checks": status}, status=200 if ready else 503)

    async def _run(self, check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), _CHECK_TIMEOUT))
        except Exception as exc:  # a failing check means "not ready", whatever it raised
            log.debug("Readiness check failed: %s", exc)
            return False
