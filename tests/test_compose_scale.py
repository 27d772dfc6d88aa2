"""compose.yaml's scale profile: PostgreSQL with a volume and a health check, two Troupe
processes that split the shards between them over one store and one llama.cpp server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config import LlamaServerConfig, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def shard_services(services: dict) -> dict[str, dict]:
    return {name: s for name, s in services.items() if "scale" in s.get("profiles", []) and name != "postgres"}


def test_postgres_keeps_its_data_on_a_volume_and_reports_its_health(services: dict) -> None:
    postgres = services["postgres"]
    assert postgres["profiles"] == ["scale"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_the_scale_processes_split_every_shard_once(services: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    owned: list[int] = []
    for service in shard_services(services).values():
        monkeypatch.setenv("TROUPE_SHARD", service["environment"]["TROUPE_SHARD"])
        config = load_config(ROOT / service["volumes"][0].split(":")[0])
        assert config.discord.shard_ids is not None and isinstance(config.discord.shard_count, int)
        owned += config.discord.shard_ids
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert config.store_url().startswith("postgresql://") and "@postgres:" in config.store_url()
        assert isinstance(config.backend, LlamaServerConfig) and config.backend.url == "http://llama:8080"
    assert sorted(owned) == list(range(config.discord.shard_count))  # type: ignore[arg-type]


def test_the_scale_processes_share_the_characters_volume(services: dict) -> None:
    mounts = [set(s["volumes"]) for s in shard_services(services).values()]
    assert all("characters:/app/characters" in m for m in mounts) and len(mounts) == 2
