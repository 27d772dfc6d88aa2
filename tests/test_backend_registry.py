"""The registry: one list of backend types, from which the config schema and create_backend derive."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.backends.pool import PoolBackend
from bot.backends.registry import BACKEND_TYPES, BackendType, backend_types, create_backend, find_type
from bot.cli import build_parser
from bot.config import parse_config
from bot.errors import ConfigError

URL = "http://127.0.0.1:9"

#: a value for each field some backend type requires (a new required field must be added here)
_REQUIRED = {"url": URL, "model": "llama3", "members": [{"type": "kobold", "url": URL}]}


def _smallest_section(entry: BackendType) -> dict[str, Any]:
    """The smallest valid ``backend:`` section of ``entry``'s type."""
    required = [name for name, field in entry.config.model_fields.items() if field.is_required() and name != "type"]
    return {"type": entry.name, **{name: _REQUIRED[name] for name in required}}


@pytest.mark.parametrize("entry", BACKEND_TYPES, ids=lambda entry: entry.name)
async def test_each_type_builds_its_backend_from_the_config_file(entry: BackendType):
    backend = create_backend(parse_config({"backend": _smallest_section(entry)}).backend)
    try:
        assert type(backend) is entry.backend_class()
    finally:
        await backend.aclose()


@pytest.mark.parametrize("entry", BACKEND_TYPES, ids=lambda entry: entry.name)
def test_each_type_is_validated_with_its_own_config_model(entry: BackendType):
    assert type(parse_config({"backend": _smallest_section(entry)}).backend) is entry.config


def test_type_names_are_unique():
    assert len(set(backend_types())) == len(BACKEND_TYPES)


async def test_pool_builds_every_member_with_the_configured_interval():
    config = parse_config({"backend": {"type": "pool", "health_interval": 3, "members": [
        {"type": "llama_server", "url": URL},
        {"type": "pool", "members": [{"type": "kobold", "url": URL}]},
    ]}})

    pool = create_backend(config.backend)
    try:
        assert isinstance(pool, PoolBackend)
        assert pool.health_interval == 3
        assert [type(m) for m in pool.members] == [find_type("llama_server").backend_class(), PoolBackend]
    finally:
        await pool.aclose()


async def test_server_backends_are_named_by_type_and_url():
    backend = create_backend(parse_config({"backend": {"type": "openai", "url": URL + "/"}}).backend)
    try:
        assert backend.name == f"openai {URL}"
    finally:
        await backend.aclose()


def test_unknown_type_name_is_a_clear_config_error():
    with pytest.raises(ConfigError, match=r"unknown backend type 'vllm_native' \(known: llama_cpp, "):
        find_type("vllm_native")


def test_a_config_of_no_known_type_is_a_clear_config_error():
    with pytest.raises(ConfigError, match=r"SimpleNamespace is not the config of any backend type \(known: "):
        create_backend(SimpleNamespace(type="openai", url=URL))  # type: ignore[arg-type]


def test_config_error_for_an_unknown_type_lists_every_registered_type():
    with pytest.raises(ConfigError) as caught:
        parse_config({"backend": {"type": "vllm_native"}})

    assert all(repr(name) in str(caught.value) for name in backend_types())


def test_cli_help_lists_every_registered_type():
    text = build_parser().format_help()

    assert all(name in text for name in backend_types())

