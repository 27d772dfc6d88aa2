"""Every backend type Troupe knows, listed once; the config schema and the CLI derive from it.

Each entry names a config model (whose ``type`` literal is the name the config file
uses) and the backend class it builds. The discriminated union the config file is
validated against (:data:`BackendConfig`) is built from this list, and so are the
config errors' list of known types and ``troupe --help``. Adding a backend type is
one config model in :mod:`bot.backends.settings`, one backend module, one line here.

A backend's module is imported only when that type is used, so a bot that talks
to a server never loads llama-cpp-python.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args

from pydantic import Field

from bot.backends.base import Backend
from bot.backends.settings import (
    ApiHostConfig,
    KoboldConfig,
    LlamaCppConfig,
    LlamaServerConfig,
    OllamaConfig,
    OobaConfig,
    OpenAIConfig,
    PoolConfig,
)
from bot.errors import ConfigError
from bot.schema import Strict

__all__ = ["BackendType", "BACKEND_TYPES", "BackendConfig", "backend_types", "find_type", "create_backend"]


@dataclass(frozen=True)
class BackendType:
    """One ``backend.type``: its config model and the backend class it builds."""

    config: type[Strict]
    #: ``"module:Class"``, imported only when the type is used
    backend: str
    #: one line for ``troupe --help``
    summary: str
    #: how to build the backend when it is not ``Class(config)``
    build: Callable[[Any], Backend] | None = None

    @property
    def name(self) -> str:
        """The ``type`` the config file uses (the config model's ``type`` literal)."""
        (name,) = get_args(self.config.model_fields["type"].annotation)
        return str(name)

    def backend_class(self) -> type:
        """The backend class (importing its module now)."""
        module, _, name = self.backend.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def create(self, config: Any) -> Backend:
        """The backend for ``config``."""
        if self.build is not None:
            return self.build(config)
        return self.backend_class()(config)  # type: ignore[no-any-return]


def _pool(config: PoolConfig) -> Backend:
    from bot.backends.pool import PoolBackend

    return PoolBackend(
        [create_backend(member) for member in config.members], health_interval=config.health_interval
    )


BACKEND_TYPES: tuple[BackendType, ...] = (
    BackendType(LlamaCppConfig, "bot.backends.llama_cpp:LlamaCppBackend",
                "the model in this process (llama-cpp-python; the default)"),
    BackendType(LlamaServerConfig, "bot.backends.llama_server:LlamaServerBackend", "llama.cpp's llama-server"),
    BackendType(OpenAIConfig, "bot.backends.openai:OpenAIBackend",
                "any OpenAI-compatible server (vLLM, LM Studio, TabbyAPI, ...)"),
    BackendType(OobaConfig, "bot.backends.ooba:OobaBackend", "text-generation-webui"),
    BackendType(KoboldConfig, "bot.backends.kobold:KoboldBackend", "KoboldCpp"),
    BackendType(OllamaConfig, "bot.backends.ollama:OllamaBackend", "Ollama"),
    BackendType(ApiHostConfig, "bot.backends.api_host:ApiHostBackend",
                "a notebook host's /api (or another Troupe's serve)"),
    BackendType(PoolConfig, "bot.backends.pool:PoolBackend",
                "several of the above: health-checked, fail-over", build=_pool),
)

_BY_NAME = {entry.name: entry for entry in BACKEND_TYPES}
_BY_CONFIG = {entry.config: entry for entry in BACKEND_TYPES}

#: a ``backend:`` section of any known type, told apart by its ``type``
BackendConfig = Annotated[
    Union[tuple(entry.config for entry in BACKEND_TYPES)],  # type: ignore[valid-type]
    Field(discriminator="type"),
]
PoolConfig.model_rebuild(_types_namespace={"BackendConfig": BackendConfig})


def backend_types() -> tuple[str, ...]:
    """Every ``backend.type`` Troupe knows, in the registry's order."""
    return tuple(_BY_NAME)


def find_type(name: str) -> BackendType:
    """The registry entry for ``name``; ConfigError naming the known types when there is none."""
    entry = _BY_NAME.get(name)
    if entry is None:
        raise ConfigError(f"backend.type: unknown backend type {name!r} (known: {', '.join(_BY_NAME)})")
    return entry


def create_backend(config: BackendConfig) -> Backend:
    """The backend for ``config``, chosen by its ``type`` (each type has its own config model)."""
    entry = _BY_CONFIG.get(type(config))
    if entry is None:
        raise ConfigError(
            f"backend: {type(config).__name__} is not the config of any backend type "
            f"(known: {', '.join(_BY_NAME)})"
        )
    return entry.create(config)
