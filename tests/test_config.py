"""Config loading: env expansion, defaults, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat import resolve_sampling
from bot.cards.model import Character
from bot.config import (
    LlamaCppConfig,
    OllamaConfig,
    OpenAIConfig,
    PoolConfig,
    SamplingSettings,
    default_config_path,
    expand_env,
    load_config,
    parse_config,
)
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def refused(data: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


def test_example_config_loads_and_uses_the_embedded_backend() -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert isinstance(config.backend, LlamaCppConfig)
    assert config.backend.model is None
    assert config.default_character == "Aria"
    assert config.resolve_path(config.characters_dir) == ROOT / "characters"


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    config = load_config(path)
    assert config.prompt.format == "auto"
    assert config.sampling.preset == "default"


def test_wrong_type_names_the_key_and_the_value() -> None:
    assert refused({"backend": {"n_ctx": "big"}}) == 'backend.n_ctx: must be an integer, got "big"'


def test_unknown_key_is_refused_with_its_path() -> None:
    assert "prompt.histroy_messages: unknown key" in refused({"prompt": {"histroy_messages": 5}})


def test_unknown_backend_type_lists_the_known_ones() -> None:
    message = refused({"backend": {"type": "gpt5"}})
    assert "backend.type: unknown backend type 'gpt5'" in message and "llama_server" in message


def test_server_backend_needs_a_url() -> None:
    assert "backend.url: is required" in refused({"backend": {"type": "openai"}})


def test_url_must_be_http() -> None:
    assert "url must start with http://" in refused({"backend": {"type": "kobold", "url": "file:///x"}})


def test_every_problem_is_reported_at_once() -> None:
    message = refused({"prompt": {"max_reply_tokens": "x", "format": "nope"}, "bogus": 1})
    assert "prompt.max_reply_tokens" in message and "prompt.format" in message and "bogus" in message


def test_unknown_sampling_preset_is_refused() -> None:
    assert "unknown preset 'wild'" in refused({"sampling": {"preset": "wild"}})


def test_not_a_mapping_is_refused() -> None:
    assert "must be a mapping" in refused(["a", "b"])


def test_broken_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("prompt:\n  format: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML at line \d+"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_env_values_and_defaults_are_expanded() -> None:
    env = {"TOKEN": "abc", "EMPTY": ""}
    assert expand_env({"a": "${TOKEN}", "b": ["x${UNSET:-dflt}y"], "c": "${EMPTY:-fallback}", "d": "${UNSET}"}, env) == {
        "a": "abc",
        "b": ["xdflty"],
        "c": "fallback",
        "d": "",
    }


def test_secret_from_environment_is_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "super-secret-token")
    config = parse_config({"discord": {"token": "${DISCORD_TOKEN}"}})
    assert config.discord.token.get_secret_value() == "super-secret-token"
    assert "super-secret-token" not in repr(config) and "super-secret-token" not in str(config.discord)


def test_numbers_from_environment_are_coerced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N_CTX", "2048")
    config = parse_config({"backend": {"n_ctx": "${N_CTX:-4096}"}})
    assert config.backend.n_ctx == 2048  # type: ignore[union-attr]


def test_pool_members_are_typed_backends() -> None:
    config = parse_config(
        {"backend": {"type": "pool", "members": [
            {"type": "openai", "url": "http://127.0.0.1:1/"},
            {"type": "ollama", "url": "http://127.0.0.1:2", "model": "gemma3"},
        ]}}
    )
    assert isinstance(config.backend, PoolConfig)
    first, second = config.backend.members
    assert isinstance(first, OpenAIConfig) and first.url == "http://127.0.0.1:1"
    assert isinstance(second, OllamaConfig)


def test_sampling_layers_preset_then_overrides_then_card() -> None:
    config = parse_config({"sampling": {"preset": "creative", "overrides": {"top_k": 7}}})
    card = Character(name="X", sampling=SamplingSettings(temperature=0.3))
    sampling = resolve_sampling(config, card)
    assert sampling.temperature == 0.3  # the card wins
    assert sampling.top_k == 7  # the config override beats the preset
    assert sampling.min_p == 0.02  # from the creative preset


def test_config_path_falls_back_to_the_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.example.yaml").write_text("{}")
    assert default_config_path() == Path("config.example.yaml")
    (tmp_path / "config.yaml").write_text("{}")
    assert default_config_path() == Path("config.yaml")
    assert default_config_path("other.yaml") == Path("other.yaml")


def test_a_shard_needs_its_id_and_the_count() -> None:
    assert parse_config({"discord": {"shard_count": 4, "shard_id": 3}}).discord.shard_id == 3
    assert "shard_id and shard_count go together" in refused({"discord": {"shard_id": 1}})
    assert "shard_id 4 is out of range: shards are numbered 0 to 3" in refused(
        {"discord": {"shard_count": 4, "shard_id": 4}})
    assert parse_config({"discord": {"shard_ids": None}}).discord.shard_id is None  # as older example configs had
    assert "shard_ids needs shard_count" in refused({"discord": {"shard_ids": [0, 1]}})


def test_shard_ids_name_this_process_shards_of_the_count() -> None:
    discord = parse_config({"discord": {"shard_count": 4, "shard_ids": [1, 3]}}).discord
    assert discord.sharded() and discord.shard_ids == [1, 3]
    assert "shard_ids [4] out of range: shards are numbered 0 to 3" in refused(
        {"discord": {"shard_count": 4, "shard_ids": [0, 4]}})
    assert "names a shard twice" in refused({"discord": {"shard_count": 4, "shard_ids": [1, 1]}})
    assert "not both" in refused({"discord": {"shard_count": 4, "shard_ids": [1], "shard_id": 1}})


def test_shard_count_auto_runs_every_shard_in_this_process() -> None:
    discord = parse_config({"discord": {"shard_count": "auto"}}).discord
    assert discord.sharded() and discord.shard_ids is None
    assert "shard_count auto runs every shard here" in refused({"discord": {"shard_count": "auto", "shard_ids": [0]}})
    assert not parse_config({"discord": {"shard_count": 2, "shard_id": 1}}).discord.sharded()  # the old one-shard way
    assert not parse_config({}).discord.sharded()


def test_metrics_listen_is_off_unless_set_and_needs_host_and_port() -> None:
    assert parse_config({}).metrics.listen is None
    assert parse_config({"metrics": {"listen": "127.0.0.1:9464"}}).metrics.listen == "127.0.0.1:9464"
    assert "metrics.listen: expected host:port" in refused({"metrics": {"listen": "9464"}})


def test_log_format_is_text_or_json() -> None:
    assert parse_config({"log_format": "json"}).log_format == "json"
    assert "log_format" in refused({"log_format": "xml"})
