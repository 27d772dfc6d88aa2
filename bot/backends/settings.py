"""The config section of each backend type (``backend:`` in config.yaml).

Each model's ``type`` literal is the name the config file uses. Which types exist,
and which backend class each builds, is listed once, in :mod:`bot.backends.registry`;
that module also builds the ``BackendConfig`` union the config file is validated
against (and so finishes :class:`PoolConfig`, whose members are that union).
``bot.config`` re-exports every model here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from bot.schema import Strict

if TYPE_CHECKING:
    from bot.backends.registry import BackendConfig

__all__ = [
    "KVCacheType",
    "LlamaCppConfig",
    "HttpBackendConfig",
    "LlamaServerConfig",
    "OpenAIConfig",
    "OobaConfig",
    "KoboldConfig",
    "OllamaConfig",
    "ApiHostConfig",
    "PoolConfig",
]

KVCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]


class LlamaCppConfig(Strict):
    """The embedded llama-cpp-python backend (the default)."""

    type: Literal["llama_cpp"] = "llama_cpp"
    model: str | None = Field(None, description="GGUF path; default: bundled Gemma 3 270M")
    models: dict[str, str] = Field(default_factory=dict, description="name -> GGUF path, for /model load")
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1, description="default: all cores")
    n_threads_batch: int | None = Field(None, ge=1)
    n_batch: int = Field(512, ge=8)
    n_gpu_layers: int = Field(0, ge=-1)
    flash_attn: bool = False
    type_k: KVCacheType = "f16"
    type_v: KVCacheType = "f16"
    seed: int = -1
    context_shift: bool = True
    state_cache_mb: int = Field(512, ge=0)


class HttpBackendConfig(Strict):
    """Fields shared by every backend that is a server reached over HTTP."""

    url: str
    api_key: SecretStr | None = None
    model: str | None = None
    n_ctx: int | None = Field(None, ge=256, description="context size; default: ask the server")
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(120.0, gt=0)
    retries: int = Field(1, ge=0, le=10)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _url_is_http(self) -> HttpBackendConfig:
        if not re.match(r"^https?://", self.url):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        self.url = self.url.rstrip("/")
        return self


class LlamaServerConfig(HttpBackendConfig):
    type: Literal["llama_server"]
    pin_slots: bool = True
    cache_reuse: int = Field(256, ge=0)
    wait_for_load: bool = Field(True, description="a request meeting a loading server waits (up to read_timeout)")


class OpenAIConfig(HttpBackendConfig):
    type: Literal["openai"]
    mode: Literal["completions", "chat"] = "completions"
    extended_samplers: bool = Field(
        False, description="also send top_k, min_p, repeat_penalty (local servers take them; OpenAI refuses them)"
    )


class OobaConfig(HttpBackendConfig):
    type: Literal["ooba"]
    mode: Literal["completions", "chat"] = "completions"


class KoboldConfig(HttpBackendConfig):
    type: Literal["kobold"]


class OllamaConfig(HttpBackendConfig):
    type: Literal["ollama"]
    model: str  # type: ignore[assignment]
    keep_alive: str = "30m"


class ApiHostConfig(HttpBackendConfig):
    type: Literal["api_host"]
    token: SecretStr | None = None
    repo_id: str = ""
    file_name: str = ""
    use_gpu: bool = True
    chat_format: str | None = None


class PoolConfig(Strict):
    """Several backends; health-checked, least-busy routing, fail-over."""

    type: Literal["pool"]
    #: resolved by bot.backends.registry, which builds the union from its list of types
    members: list[BackendConfig] = Field(min_length=1)
    health_interval: float = Field(10.0, gt=0)
