"""The config file: pydantic models of ``config.yaml`` and the loader.

Values may use ``${VAR}`` or ``${VAR:-default}`` to come from the environment
(secrets belong there). Unknown keys and wrong types are refused with the key path
and the reason, e.g. ``backend.n_ctx: must be an integer, got "big"``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from bot.backends.registry import BackendConfig, backend_types
from bot.backends.settings import (
    ApiHostConfig,
    HttpBackendConfig,
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

__all__ = [
    "Strict",
    "SamplingSettings",
    "SamplingConfig",
    "PromptConfig",
    "SceneConfig",
    "MemoryConfig",
    "LlamaCppConfig",
    "HttpBackendConfig",
    "LlamaServerConfig",
    "OpenAIConfig",
    "OobaConfig",
    "KoboldConfig",
    "OllamaConfig",
    "ApiHostConfig",
    "PoolConfig",
    "BackendConfig",
    "DiscordConfig",
    "AccessLists",
    "StoreConfig",
    "ServeConfig",
    "MetricsConfig",
    "Config",
    "BUILTIN_PRESETS",
    "load_config",
    "parse_config",
    "expand_env",
    "default_config_path",
]


# --------------------------------------------------------------------------- sampling


class SamplingSettings(Strict):
    """Sampler values; any left unset fall back to the preset below them."""

    temperature: float | None = Field(None, ge=0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    min_p: float | None = Field(None, ge=0, le=1)
    repeat_penalty: float | None = Field(None, gt=0)
    repeat_last_n: int | None = Field(None, ge=0)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None


BUILTIN_PRESETS: dict[str, SamplingSettings] = {
    "greedy": SamplingSettings(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0),
    "default": SamplingSettings(
        temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, repeat_last_n=64
    ),
    "creative": SamplingSettings(
        temperature=1.1, top_k=0, top_p=0.98, min_p=0.02, repeat_penalty=1.15, repeat_last_n=128
    ),
    "min_p": SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.1, repeat_penalty=1.05),
}


class SamplingConfig(Strict):
    """Which preset to use, extra presets, and overrides applied on top."""

    preset: str = "default"
    presets: dict[str, SamplingSettings] = Field(default_factory=dict)
    overrides: SamplingSettings = Field(default_factory=SamplingSettings)

    @model_validator(mode="after")
    def _preset_exists(self) -> SamplingConfig:
        known = {**BUILTIN_PRESETS, **self.presets}
        if self.preset not in known:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(sorted(known))})")
        return self

    def all_presets(self) -> dict[str, SamplingSettings]:
        """Built-in presets merged with the config's own (which win)."""
        return {**BUILTIN_PRESETS, **self.presets}


# --------------------------------------------------------------------------- prompt

#: ``auto``: the model's own chat template, ``transcript`` when it has none
PromptFormat = Literal["auto", "transcript", "chatml", "llama3", "gemma", "mistral", "alpaca"]


class PromptConfig(Strict):
    """How the transcript prompt is laid out and sized."""

    format: PromptFormat = "auto"
    history_messages: int = Field(100, ge=1, le=200)
    token_budget: int | None = Field(
        None, ge=64, description="prompt tokens at most; default: context size minus reply length"
    )
    max_reply_tokens: int = Field(200, ge=1, le=4096)
    system_prompt: str = (
        "This is a conversation in a chat room. Write {{char}}'s next reply in the chat "
        "below. Stay in character, keep replies short and conversational."
    )
    post_history_instructions: str = ""
    include_examples: bool = True
    pin_examples: bool = False
    drop_fraction: float = Field(0.33, gt=0, le=1)
    read_ahead: bool = True
    user_name: str = "User"
    #: a scene's system prompt (several characters): it names no speaker, so every speaker
    #: shares the prompt; ``{{char}}`` is the cast's names ("Aria and Captain Brass")
    group_system_prompt: str = (
        "This is a conversation in a chat room between people and the characters {{char}}. "
        "Write the next reply of the character named at the end, in character. Each character "
        "speaks only for themselves; keep replies short and conversational."
    )


# --------------------------------------------------------------------------- discord


class AccessLists(Strict):
    """Where the bot speaks. An empty allow list allows all; deny always wins."""

    allow_guilds: list[int] = Field(default_factory=list)
    deny_guilds: list[int] = Field(default_factory=list)
    allow_channels: list[int] = Field(default_factory=list)
    deny_channels: list[int] = Field(default_factory=list)
    allow_users: list[int] = Field(default_factory=list)
    deny_users: list[int] = Field(default_factory=list)
    allow_roles: list[int] = Field(default_factory=list)
    deny_roles: list[int] = Field(default_factory=list)


class DiscordConfig(Strict):
    """The Discord front end."""

    token: SecretStr = SecretStr("")
    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    allow_dms: bool = True
    respond_to_bots: bool = False
    wake_words: bool = True
    reply_as: Literal["webhook", "bot"] = "webhook"
    edit_interval: float = Field(1.0, ge=0.2)
    queue_size: int = Field(3, ge=0)
    user_cooldown: float = Field(3.0, ge=0)
    fallback_reply: str = "…"
    #: a reasoning model's thinking: never shown (off), as a spoiler message before the
    #: reply (spoiler), or as a reasoning.txt attachment to it (file)
    show_reasoning: Literal["off", "spoiler", "file"] = "off"
    #: a message starting with one of these is out of character: never answered, and left out
    #: of the chat the character reads
    ooc_prefixes: list[str] = Field(default_factory=lambda: ["//", "(("])
    admin_user_ids: list[int] = Field(default_factory=list)
    admin_role_ids: list[int] = Field(default_factory=list)
    access: AccessLists = Field(default_factory=AccessLists)
    import_max_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    sync_commands: bool = True
    #: Discord's shards: unset (one connection), ``auto`` (as many as Discord recommends, all in
    #: this process), or a number N: then ``shard_ids`` names the shards this process runs (all N
    #: when unset), so several processes sharing one PostgreSQL store can split them.
    #: ``shard_id`` is the older spelling of ``shard_ids: [ID]`` (one shard, one process).
    shard_count: int | Literal["auto"] | None = None
    shard_ids: list[int] | None = None
    shard_id: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _shards_fit(self) -> DiscordConfig:
        count, ids = self.shard_count, self.shard_ids
        if count == "auto":
            if self.shard_id is not None or ids is not None:
                raise ValueError("shard_count auto runs every shard here: set shard_count to a number "
                                 "to choose shard_ids")
            return self
        if isinstance(count, int) and count < 1:
            raise ValueError(f"shard_count must be at least 1, got {count}")
        if self.shard_id is not None:
            if count is None:
                raise ValueError("shard_id and shard_count go together: this process's shard, and how many there are")
            if ids is not None:
                raise ValueError("set shard_ids or shard_id, not both (shard_id is the old spelling of shard_ids: [ID])")
            if self.shard_id >= count:
                raise ValueError(f"shard_id {self.shard_id} is out of range: shards are numbered 0 to {count - 1}")
        if ids is not None:
            if count is None:
                raise ValueError("shard_ids needs shard_count: how many shards there are over all processes")
            if not ids:
                raise ValueError("shard_ids is empty: name the shards this process runs, or leave it unset for all")
            if len(set(ids)) != len(ids):
                raise ValueError(f"shard_ids names a shard twice: {ids}")
            bad = [i for i in ids if not 0 <= i < count]
            if bad:
                raise ValueError(f"shard_ids {bad} out of range: shards are numbered 0 to {count - 1}")
        return self

    def sharded(self) -> bool:
        """Whether this process runs discord.py's sharded client (``shard_count`` auto, or N
        with ``shard_ids`` or none); an old single ``shard_id`` runs the plain client on that shard."""
        return self.shard_count is not None and self.shard_id is None


class SceneConfig(Strict):
    """Scenes: several characters in one channel (``/scene``)."""

    manage: Literal["anyone", "admins"] = "anyone"  # who may change a channel's cast
    max_cast: int = Field(6, ge=1, le=15)
    #: who answers a message that names no member: ``natural`` (a draw weighted by
    #: talkativeness), ``list`` (members in turn) or ``model`` (the model picks from the transcript)
    director: Literal["natural", "list", "model"] = "natural"
    answer_all_named: bool = False  # every member a message names answers, in order
    max_chain: int = Field(2, ge=0, le=10)  # character turns in a row after a human's message
    #: chance (times the member's talkativeness, falling with the time since a character spoke)
    #: that a message addressed to nobody gets a reply anyway; 0: never
    ambient: float = Field(0.0, ge=0, le=1)
    ambient_cooldown: float = Field(120.0, ge=0)  # seconds between ambient replies in one channel


class StoreConfig(Strict):
    """Persistent state: ``url`` (``sqlite:///troupe.db``, ``postgresql://user:${PGPASSWORD}@host/db``),
    or ``path``, the older way to name a SQLite file (the same as ``url: sqlite:///PATH``)."""

    path: str = "troupe.db"
    url: str | None = Field(None, repr=False)  # may hold a password: never shown

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        from bot.errors import StoreError
        from bot.store.urls import scheme_of

        if url is not None:
            try:
                scheme_of(url)
            except StoreError as exc:  # its message shows the URL with the password redacted
                raise ValueError(str(exc).removeprefix("store.url: ")) from exc
        return url

    @model_validator(mode="after")
    def _one_store(self) -> StoreConfig:
        if self.url is not None and "path" in self.model_fields_set:
            raise ValueError("set store.url or store.path, not both (path is the old spelling of sqlite:///PATH)")
        return self


class MemoryConfig(Strict):
    """Memory beyond the prompt window: recall of older talk (and a running summary), per channel."""

    enabled: bool = True
    #: days a seen message stays searchable; older ones leave the index (pruned in the background)
    keep_days: int = Field(90, ge=1)
    #: prompt tokens at most for recalled lines (reserved while memory is on, so the window stays put)
    recall_tokens: int = Field(120, ge=0, le=2000)
    #: recalled messages at most per reply
    recall_messages: int = Field(3, ge=0, le=20)
    #: tokens at most of a channel's running summary
    summary_tokens: int = Field(200, ge=0, le=2000)


class ServeConfig(Strict):
    """``python -m bot serve``: the configured backend over HTTP."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    token: SecretStr | None = None


class MetricsConfig(Strict):
    """Prometheus metrics and health routes for orchestrators; off unless ``listen`` is set."""

    #: ``host:port`` serving /metrics, /healthz and /readyz (e.g. 127.0.0.1:9464)
    listen: str | None = None
    #: seconds between health checks of the backend (each pool member) for metrics and /readyz
    health_interval: float = Field(10.0, gt=0)

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, listen: str | None) -> str | None:
        if listen is not None:
            host, sep, port = listen.rpartition(":")
            if not sep or not host or not port.isdigit() or int(port) > 65535:
                raise ValueError(f"expected host:port (e.g. 127.0.0.1:9464), got {listen!r}")
        return listen


class Config(Strict):
    """The whole config file."""

    backend: BackendConfig = Field(default_factory=LlamaCppConfig)
    characters_dir: str = "characters"
    #: seconds between looks at ``characters_dir`` for cards added, changed or removed (0: never)
    characters_watch: float = Field(5.0, ge=0)
    default_character: str | None = None
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    scene: SceneConfig = Field(default_factory=SceneConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    #: ``text`` lines, or ``json``: one JSON object per line (for log collectors)
    log_format: Literal["text", "json"] = "text"
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    #: where the file was read from; relative paths in it are resolved against its folder
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _backend_type_defaults_to_embedded(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("backend"), dict) and "type" not in data["backend"]:
            data = {**data, "backend": {"type": "llama_cpp", **data["backend"]}}
        return data

    def resolve_path(self, value: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(os.path.expanduser(str(value)))
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path

    def store_url(self) -> str:
        """The store's URL (``store.url``, else ``store.path`` as ``sqlite:///``), SQLite paths resolved."""
        from bot.store.urls import store_url

        return store_url(self)


# --------------------------------------------------------------------------- loading

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: dict[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree.

    An unset variable without a default becomes the empty string.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _ENV_PATTERN.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


_TYPE_WORDS = {
    "int": "must be an integer",
    "float": "must be a number",
    "bool": "must be true or false",
    "string": "must be a string",
    "dict": "must be a mapping",
    "list": "must be a list",
}


def _describe(error: dict[str, Any]) -> str:
    kind: str = error["type"]
    loc = ".".join(str(p) for p in error["loc"] if not _is_union_tag(p)) or "(top level)"
    given = error.get("input")
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "missing":
        return f"{loc}: is required"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"{loc}.type: unknown backend type {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
    if kind == "union_tag_not_found":
        return f"{loc}: needs a 'type' key"
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix + "_") or kind == prefix:
            if kind.endswith(("_type", "_parsing", "_from_float")) or kind == prefix:
                return f"{loc}: {words}, got {_show(given)}"
    if kind == "value_error":
        return f"{loc}: {error['msg'].removeprefix('Value error, ')}"
    return f"{loc}: {error['msg'][0].lower()}{error['msg'][1:]}, got {_show(given)}"


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in backend_types()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return repr(value)


def parse_config(data: Any, *, source: Path | None = None) -> Config:
    """Validate an already-loaded YAML tree; raises ConfigError naming each bad key."""
    where = f"{source}: " if source else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}the config must be a mapping of keys, got {type(data).__name__}")
    try:
        config = Config.model_validate(expand_env(data))
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{where}{problems}") from exc
    config.source = source
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from exc
    return parse_config(data, source=path.resolve())


def default_config_path(explicit: str | Path | None = None) -> Path:
    """``--config`` if given, else ``config.yaml``, else ``config.example.yaml``."""
    if explicit is not None:
        return Path(explicit)
    for candidate in (Path("config.yaml"), Path("config.example.yaml")):
        if candidate.exists():
            return candidate
    return Path("config.yaml")
