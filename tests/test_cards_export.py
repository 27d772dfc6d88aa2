"""Export: V2/V3 mappings, our YAML and PNG cards load back as the same character."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from test_cards_support import comparable, jpeg_image, png_image, v3_card

from bot.cards import export_png, load_card_bytes, to_v2_dict, to_v3_dict, to_yaml
from bot.cards.lorebook import DECORATORS_KEY
from bot.cards.model import Character, LoreEntry, Lorebook
from bot.config import SamplingSettings


@pytest.fixture
def rich() -> Character:
    """A character using every field."""
    return Character(
        name="Aria", nickname="Ari", description="A tavern keeper.\nWitty.", personality="warm",
        scenario="The Copper Kettle inn.", first_mes="Welcome in!", alternate_greetings=["Back again?"],
        group_only_greetings=["Hello, all of you!"], mes_example="<START>\n{{user}}: Hi\n{{char}}: Hey!",
        system_prompt="sys {{original}}", post_history_instructions="stay short", creator_notes="notes",
        tags=["inn", "friendly"], creator="troupe", character_version="1.0",
        lorebook=Lorebook(name="Inn lore", scan_depth=4, token_budget=300, recursive_scanning=True, entries=[
            LoreEntry(keys=["kettle"], content="The inn's name.", constant=True, priority=5, id=1),
            LoreEntry(keys=["ale"], content="Ale costs a copper.", position="after_char",
                      secondary_keys=["price"], selective=True, case_sensitive=False, comment="ale",
                      extensions={DECORATORS_KEY: ["@@depth 2"], "st": {"x": 1}, "match_whole_words": False}),
        ], extensions={"match_whole_words": True}),
        avatar="https://example.com/aria.png", stop_strings=["\n[Bob]:"], wake_words=["barkeep"],
        sampling=SamplingSettings(temperature=0.7, top_p=0.9), extensions={"fav": True, "depth_prompt": {"d": 4}},
    )


def _reload_json(card: dict[str, object], name: str = "card.json") -> Character:
    return load_card_bytes(json.dumps(card).encode(), name)


def test_v2_dict_round_trip_keeps_every_field(rich: Character) -> None:
    back = _reload_json(to_v2_dict(rich))
    assert back.spec == "v2" and comparable(back) == comparable(rich)


def test_v3_dict_round_trip_keeps_every_field(rich: Character) -> None:
    back = _reload_json(to_v3_dict(rich))
    assert back.spec == "v3" and comparable(back) == comparable(rich)


def test_yaml_round_trip_keeps_every_field(rich: Character) -> None:
    back = load_card_bytes(to_yaml(rich).encode(), "aria.yaml")
    assert back.spec == "troupe" and comparable(back) == comparable(rich) and back.warnings == []


def test_unknown_extensions_survive_load_then_v2_then_v3_then_load() -> None:
    extensions = {"depth_prompt": {"depth": 4, "prompt": "p"}, "risuai": {"custom": [1, 2, None]}}
    first = _reload_json(v3_card("Ext", extensions=extensions))
    second = _reload_json(to_v2_dict(first))
    third = _reload_json(to_v3_dict(second))
    assert first.extensions == second.extensions == third.extensions == extensions


def test_exports_copy_the_v1_fields_to_the_top_level(rich: Character) -> None:
    for card in (to_v2_dict(rich), to_v3_dict(rich)):
        assert (card["name"], card["description"], card["first_mes"]) == (
            rich.name, rich.description, rich.first_mes)


def test_troupe_settings_go_into_their_own_extension(rich: Character) -> None:
    extensions = to_v2_dict(rich)["data"]["extensions"]
    assert extensions["troupe"]["wake_words"] == ["barkeep"] and extensions["fav"] is True


def test_v3_export_puts_decorators_back_into_the_content(rich: Character) -> None:
    entries = to_v3_dict(rich)["data"]["character_book"]["entries"]
    assert entries[1]["content"] == "@@depth 2\nAle costs a copper."
    assert DECORATORS_KEY not in entries[1]["extensions"]


def test_export_png_v3_has_both_chunks_and_round_trips(rich: Character) -> None:
    png = export_png(rich, spec="v3")
    with Image.open(io.BytesIO(png)) as image:
        text = image.text
    assert json.loads(base64.b64decode(text["ccv3"]))["spec"] == "chara_card_v3"
    assert json.loads(base64.b64decode(text["chara"]))["spec"] == "chara_card_v2"
    back = load_card_bytes(png, "aria.png")
    assert back.spec == "v3" and comparable(back) == comparable(rich) and back.avatar_png == png


def test_export_png_v2_has_only_chara_and_round_trips(rich: Character) -> None:
    png = export_png(rich, spec="v2")
    with Image.open(io.BytesIO(png)) as image:
        assert set(image.text) == {"chara"}
    back = load_card_bytes(png, "aria.png")
    assert back.spec == "v2" and comparable(back) == comparable(rich)


def test_export_png_uses_the_given_image(rich: Character) -> None:
    png = export_png(rich, image=png_image((32, 16)))
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (32, 16)


def test_export_png_converts_a_jpeg_image(rich: Character) -> None:
    png = export_png(rich, image=jpeg_image((20, 20)))
    assert png.startswith(b"\x89PNG") and load_card_bytes(png, "a.png").name == "Aria"


def test_export_png_without_an_image_draws_a_placeholder() -> None:
    png = export_png(Character(name="Plain"))
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (256, 256)
    assert load_card_bytes(png, "plain.png").name == "Plain"


def test_re_exporting_a_png_card_replaces_its_old_card_chunks() -> None:
    first = load_card_bytes(export_png(Character(name="First")), "first.png")
    renamed = first.model_copy(update={"name": "Second"})
    png = export_png(renamed)
    with Image.open(io.BytesIO(png)) as image:
        keywords = [k for k in image.text if k.lower() in ("chara", "ccv3")]
    assert sorted(keywords) == ["ccv3", "chara"] and load_card_bytes(png, "second.png").name == "Second"


def test_yaml_uses_the_friendly_names(rich: Character) -> None:
    text = to_yaml(rich)
    assert "persona: |" in text and "greeting: Welcome in!" in text and "example_dialogue:" in text
    assert "description:" not in text.split("lorebook:")[0]


def test_yaml_leaves_out_empty_fields() -> None:
    assert to_yaml(Character(name="Bare")) == "name: Bare\n"


def test_yaml_writes_an_avatar_file_when_there_is_no_url() -> None:
    text = to_yaml(Character(name="Pic"), avatar_file="pic.avatar.png")
    assert "avatar: pic.avatar.png" in text
