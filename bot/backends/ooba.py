"""text-generation-webui (oobabooga): its OpenAI routes plus its internal API.

Generation uses the OpenAI routes with the webui's own sampler names
(``repetition_penalty``, ``min_p``, ``top_k``, ``truncation_length``). The internal
routes give exact token counts (``/v1/internal/token-count``), the loaded model
(``/v1/internal/model/info``), the models on disk (``/v1/internal/model/list``),
model switching (``/v1/internal/model/load``) and stopping a generation
(``/v1/internal/stop-generation``), so ``/model info``, ``/model load`` and ``/stop``
work against it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from bot.backends.base import Capabilities, GenerationRequest, Health, ModelInfo
from bot.backends.http import Generation
from bot.backends.openai import OpenAIBackend
from bot.backends.settings import OobaConfig
from bot.errors import BackendError

__all__ = ["OobaBackend"]

log = logging.getLogger(__name__)

#: loading a model from disk can take minutes
_LOAD_TIMEOUT = 600.0
_NO_MODEL = {"", "None", None}


class _TokenCount(BaseModel):
    length: int


class _ModelInfo(BaseModel):
    model_name: str | None = None
    lora_names: list[str] | None = None
    loader: str | None = None


class _ModelList(BaseModel):
    model_names: list[str] = []


_TOKEN_COUNT = TypeAdapter(_TokenCount)
_MODEL_INFO = TypeAdapter(_ModelInfo)
_MODEL_LIST = TypeAdapter(_ModelList)


class OobaBackend(OpenAIBackend):
    """A text-generation-webui server started with ``--api``."""

    kind = "ooba"
    capabilities = Capabilities(streaming=True, tokenize=True, abort=True, model_info=True, model_load=True)

    def __init__(self, config: OobaConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        self.config: OobaConfig = config

    def _sampler_extras(self, request: GenerationRequest) -> dict[str, Any]:
        s = request.sampling
        extras: dict[str, Any] = {
            "top_k": s.top_k,
            "min_p": s.min_p,
            "repetition_penalty": s.repeat_penalty,
            "repetition_penalty_range": s.repeat_last_n,
        }
        if self.config.n_ctx:
            extras["truncation_length"] = self.config.n_ctx
        return extras

    async def _model_name(self) -> str | None:
        # the webui ignores "model" in generation requests; it serves whatever is loaded
        return self.config.model

    async def _stop_server_generation(self, generation: Generation) -> None:
        await self._request("POST", "/v1/internal/stop-generation")

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Exact counts from ``/v1/internal/token-count``."""

        async def count(text: str) -> int:
            if not text:
                return 0
            answer = await self._parsed("POST", "/v1/internal/token-count", _TOKEN_COUNT, json_body={"text": text})
            return answer.length

        return list(await asyncio.gather(*(count(text) for text in texts)))

    async def model_info(self) -> ModelInfo:
        """The loaded model (with its LoRAs) and the models on disk."""
        info = await self._parsed("GET", "/v1/internal/model/info", _MODEL_INFO)
        try:
            available = tuple((await self._parsed("GET", "/v1/internal/model/list", _MODEL_LIST)).model_names)
        except BackendError as exc:
            log.info("%s: cannot list models (%s)", self.name, exc)
            available = ()
        details: dict[str, object] = {
            key: value for key, value in (("lora_names", info.lora_names), ("loader", info.loader)) if value is not None
        }
        return ModelInfo(
            name=info.model_name if info.model_name not in _NO_MODEL else "none",
            n_ctx=await self.context_size(),
            available=available,
            details=details,
        )

    async def _probe(self) -> Health:
        info = await self.model_info()
        if info.name == "none":
            return Health(ok=False, detail="the webui has no model loaded (load one with /model load)")
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)

    async def load_model(self, name: str) -> ModelInfo:
        """Load ``name`` (a model folder or file the webui knows) and report it."""
        log.info("%s: loading model %r", self.name, name)
        await self._request(
            "POST", "/v1/internal/model/load", json_body={"model_name": name}, timeout=_LOAD_TIMEOUT
        )
        self._n_ctx = self.config.n_ctx
        return await self.model_info()
