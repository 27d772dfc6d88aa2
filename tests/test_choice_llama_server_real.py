"""The constrained choice (``ChoiceBackend``) against llama.cpp's REAL ``llama-server``:
``grammar`` on ``/completion`` in the conversation's slot (see ``tests/llama_server_real.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.backends.base import ChoiceBackend, GenerationRequest, Sampling
from bot.backends.llama_server import LlamaServerBackend
from llama_server_real import LlamaServerProcess
from tests.fakes.streams import http_backend

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
#: people talking among themselves: left free, the model names one of them, not the cast
TRANSCRIPT = (
    "A scene in a tavern with Aria and Captain Brass.\n"
    "[Alice]: Bob, did you bring the lantern?\n"
    "[Bob]: I did, Alice. It's by the door.\n"
    "[Alice]: Bob, can you light it?\n["
)
CHOICES = ["Aria]", "Captain Brass]"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(llama_server: LlamaServerProcess) -> AsyncIterator[LlamaServerBackend]:
    built = http_backend("llama_server", llama_server.url, retries=0, cache_reuse=32)
    yield built
    await built.aclose()


async def test_the_server_chooses_a_cast_members_name(backend: LlamaServerBackend) -> None:
    assert isinstance(backend, ChoiceBackend)
    request = GenerationRequest(prompt=TRANSCRIPT, max_tokens=8, sampling=GREEDY, conversation="choice-greedy")
    assert await backend.choose(request, CHOICES) in CHOICES


async def test_the_free_continuation_there_names_a_person(backend: LlamaServerBackend) -> None:
    request = GenerationRequest(prompt=TRANSCRIPT, max_tokens=4, stops=("]",), sampling=GREEDY,
                                conversation="choice-free")
    written = "".join([chunk.text async for chunk in backend.stream(request)])
    assert written.strip() and written.strip() not in ("Aria", "Captain Brass")


async def test_a_sampled_choice_is_a_choice_for_every_seed(backend: LlamaServerBackend) -> None:
    for seed in range(1, 4):
        sampling = Sampling(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=seed)
        request = GenerationRequest(prompt=TRANSCRIPT, max_tokens=8, sampling=sampling, conversation="choice-seeds")
        assert await backend.choose(request, CHOICES) in CHOICES
