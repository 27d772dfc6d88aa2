"""The openai backend against a REAL OpenAI-compatible server: llama-cpp-python's
``python -m llama_cpp.server`` with the bundled model, started on 127.0.0.1 here."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.backends.base import ChatMessage, GenerationRequest, Sampling
from bot.backends.openai import OpenAIBackend
from bot.config import OpenAIConfig
from bot.errors import BackendProtocolError, BackendUnavailable
from server_process import wait_until_answering

from tests.fakes.server import free_port
from tests.fakes.streams import reply

pytestmark = pytest.mark.model

PROMPT = "[Ann]: Hello, how are you?\n[Bot]:"
GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
STARTUP_SECONDS = 120


class LlamaCppServer:
    """A ``python -m llama_cpp.server`` child process."""

    def __init__(self, model: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="llama_cpp_server_", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
        ]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        wait_until_answering(self.process, f"{self.url}/v1/models", name="llama_cpp.server",
                             timeout=STARTUP_SECONDS, log_tail=self.tail, interval=0.2)

    def tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
        os.unlink(self.log.name)


@pytest.fixture(scope="session")
def llama_cpp_server(model_path: Path) -> Iterator[LlamaCppServer]:
    server = LlamaCppServer(model_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


async def test_completion_streams_in_pieces_then_a_final_chunk(llama_cpp_server):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=llama_cpp_server.url))
    pieces = []
    try:
        async for chunk in backend.stream(GenerationRequest(prompt=PROMPT, max_tokens=16, sampling=GREEDY)):
            pieces.append(chunk)
    finally:
        await backend.aclose()

    texts = [c.text for c in pieces if c.text]
    assert len(texts) > 1
    assert pieces[-1].done and pieces[-1].timings.finish_reason in ("stop", "length")
    assert "".join(texts).strip()


async def test_server_cuts_the_reply_at_a_stop_string(llama_cpp_server):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=llama_cpp_server.url))
    try:
        free, _ = await reply(backend, PROMPT, max_tokens=16, sampling=GREEDY)
        assert "\n[" in free, "the model should start another speaker's line within 16 tokens"
        stopped, final = await reply(backend, PROMPT, max_tokens=16, sampling=GREEDY, stops=("\n[",))
    finally:
        await backend.aclose()

    assert stopped == free.split("\n[")[0]
    assert final.timings.finish_reason == "stop"


async def test_chat_mode_request_gets_a_streamed_reply(llama_cpp_server):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=llama_cpp_server.url, mode="chat"))
    messages = (ChatMessage("system", "You are Bot, a friendly pirate."), ChatMessage("user", "What is the capital of France?"))
    try:
        text, final = await reply(backend, "", messages=messages, max_tokens=12, sampling=GREEDY)
    finally:
        await backend.aclose()

    assert text.strip()
    assert final.timings.finish_reason in ("stop", "length")


async def test_token_counts_come_from_the_servers_tokenizer(llama_cpp_server):
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=llama_cpp_server.url))
    try:
        counts = await backend.count_tokens(["hello world", "hello world hello world"])
    finally:
        await backend.aclose()

    assert backend.capabilities.tokenize
    assert counts[1] - counts[0] == 2  # exact token arithmetic, not a character estimate


async def test_killing_the_server_mid_stream_raises_instead_of_hanging(model_path):
    server = LlamaCppServer(model_path)
    backend = OpenAIBackend(OpenAIConfig(type="openai", url=server.url, retries=0, read_timeout=30))
    try:
        await asyncio.to_thread(server.wait_ready)
        stream = backend.stream(GenerationRequest(prompt=PROMPT, max_tokens=400, sampling=GREEDY))
        first = await asyncio.wait_for(anext(stream), 60)
        server.process.send_signal(signal.SIGKILL)
        with pytest.raises((BackendProtocolError, BackendUnavailable)):
            async with asyncio.timeout(30):
                async for _ in stream:
                    pass
    finally:
        await backend.aclose()
        server.stop()

    assert first.text
