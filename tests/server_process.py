"""Real servers the tests start as processes: waiting until one answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx

__all__ = ["wait_until_answering"]


def wait_until_answering(
    process: subprocess.Popen[bytes], url: str, *, name: str, timeout: float, log_tail: Callable[[], str],
    interval: float = 0.05,
) -> None:
    """Return once ``url`` answers 200; raise with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early ({process.returncode}):\n{log_tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{name} did not start in {timeout:g} s:\n{log_tail()}")
