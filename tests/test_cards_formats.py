"""Loading each text card format into a Character: Troupe YAML, V1, V2, V3, Pygmalion, ooba."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_cards_support import jpeg_image, png_image, v2_card, v3_card

from bot.cards import load_card, load_card_bytes
from bot.cards.lorebook import DECORATORS_KEY
from bot.errors import CardError


def _json(card: object) -> bytes:
    return json.dumps(card).encode("utf-8")


def _yaml(card: object) -> bytes:
    return yaml.safe_dump(card).encode("utf-8")


# ----------------------------------------------------------------------------- Troupe YAML

def test_troupe_yaml_friendly_names_map_to_card_fields() -> None:
    card = _yaml({"name": "Aria", "persona": "A keeper.", "greeting": "Welcome!",
                  "example_dialogue": "<START>\n{{char}}: Hi."})
    character = load_card_bytes(card, "aria.yaml")
    assert (character.description, character.first_mes, character.mes_example) == (
        "A keeper.", "Welcome!", "<START>\n{{char}}: Hi.")
    assert character.spec == "troupe"


def test_troupe_yaml_accepts_the_v2_names_too() -> None:
    character = load_card_bytes(_yaml({"name": "Aria", "description": "d", "first_mes": "f"}), "aria.yaml")
    assert (character.description, character.first_mes) == ("d", "f")


def test_troupe_yaml_reads_every_key() -> None:
    card = {
        "name": "Aria", "nickname": "Ari", "personality": "warm", "scenario": "an inn",
        "alternate_greetings": ["Hey"], "system_prompt": "sys", "post_history_instructions": "phi",
        "avatar": "https://example.com/a.png", "stop_strings": ["\n[Bob]:"], "wake_words": ["barkeep"],
        "sampling": {"temperature": 0.7, "top_p": 0.9}, "tags": ["inn"], "creator": "me",
        "creator_notes": "notes", "lorebook": {"entries": [{"keys": ["ale"], "content": "Ale is cheap."}]},
    }
    character = load_card_bytes(_yaml(card), "aria.yaml")
    assert character.nickname == "Ari" and character.wake_words == ["barkeep"]
    assert character.sampling is not None and character.sampling.temperature == 0.7
    assert character.lorebook is not None and character.lorebook.entries[0].keys == ["ale"]
    assert character.avatar == "https://example.com/a.png" and character.warnings == []


def test_troupe_yaml_unknown_key_is_refused_naming_the_key() -> None:
    with pytest.raises(CardError) as caught:
        load_card_bytes(_yaml({"name": "Aria", "greting": "Hi"}), "aria.yaml")
    assert "'greting'" in caught.value.problem and "did you mean 'greeting'" in caught.value.problem


def test_troupe_yaml_with_both_persona_and_description_is_refused() -> None:
    with pytest.raises(CardError, match="both 'persona' and 'description'"):
        load_card_bytes(_yaml({"name": "Aria", "persona": "a", "description": "b"}), "aria.yaml")


def test_troupe_yaml_bad_sampling_value_names_the_setting() -> None:
    with pytest.raises(CardError) as caught:
        load_card_bytes(_yaml({"name": "Aria", "sampling": {"temperature": -1}}), "aria.yaml")
    assert "sampling.temperature" in caught.value.problem


def test_troupe_yaml_unknown_sampling_setting_is_refused() -> None:
    with pytest.raises(CardError, match="sampling.warmth"):
        load_card_bytes(_yaml({"name": "Aria", "sampling": {"warmth": 3}}), "aria.yaml")


def test_troupe_yaml_unquoted_number_name_is_a_type_error() -> None:
    with pytest.raises(CardError, match=r"field 'name' must be a string, got a number \(1984\)"):
        load_card_bytes(b"name: 1984\n", "novel.yaml")


def test_troupe_card_written_as_json_is_recognised() -> None:
    character = load_card_bytes(_json({"name": "Aria", "persona": "p", "wake_words": ["hey"]}), "aria.json")
    assert character.spec == "troupe" and character.description == "p"


def test_troupe_yaml_reserved_troupe_extension_is_dropped_with_a_warning() -> None:
    character = load_card_bytes(_yaml({"name": "Aria", "extensions": {"troupe": {"x": 1}, "kept": 2}}), "a.yaml")
    assert character.extensions == {"kept": 2}
    assert any("extensions.troupe" in warning for warning in character.warnings)


def test_yaml_alias_is_refused() -> None:
    with pytest.raises(CardError, match="aliases"):
        load_card_bytes(b"name: &n Aria\nnickname: *n\n", "aria.yaml")


# ----------------------------------------------------------------------------- avatars

def test_avatar_file_next_to_the_card_is_read_as_png(tmp_path: Path) -> None:
    (tmp_path / "aria.png").write_bytes(png_image())
    (tmp_path / "aria.yaml").write_text("name: Aria\navatar: aria.png\n")
    character = load_card(tmp_path / "aria.yaml")
    assert character.avatar_png == png_image() and character.avatar is None


def test_avatar_jpeg_file_is_converted_to_png(tmp_path: Path) -> None:
    (tmp_path / "aria.jpg").write_bytes(jpeg_image())
    (tmp_path / "aria.yaml").write_text("name: Aria\navatar: aria.jpg\n")
    character = load_card(tmp_path / "aria.yaml")
    assert character.avatar_png is not None and character.avatar_png.startswith(b"\x89PNG")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "data:image/png;base64,AAAA"])
def test_avatar_with_a_non_http_scheme_is_dropped_with_a_warning(url: str) -> None:
    character = load_card_bytes(_yaml({"name": "Aria", "avatar": url}), "aria.yaml")
    assert character.avatar is None and character.avatar_png is None
    assert any("dropped" in warning for warning in character.warnings)


def test_avatar_path_outside_the_card_folder_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png_image())
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "aria.yaml").write_text("name: Aria\navatar: ../secret.png\n")
    character = load_card(folder / "aria.yaml")
    assert character.avatar_png is None
    assert any("outside the card's folder" in warning for warning in character.warnings)


def test_missing_avatar_file_is_a_warning_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "aria.yaml").write_text("name: Aria\navatar: nowhere.png\n")
    character = load_card(tmp_path / "aria.yaml")
    assert character.name == "Aria" and any("not found" in warning for warning in character.warnings)


# ----------------------------------------------------------------------------- V1 / V2 / V3

def test_v1_card_reads_its_six_top_level_fields() -> None:
    card = {"name": "Old", "description": "d", "personality": "p", "scenario": "s",
            "first_mes": "f", "mes_example": "m", "talkativeness": "0.5"}
    character = load_card_bytes(_json(card), "old.json")
    assert character.spec == "v1"
    assert (character.description, character.personality, character.scenario,
            character.first_mes, character.mes_example) == ("d", "p", "s", "f", "m")


def test_v2_card_reads_data_fields_and_keeps_extensions() -> None:
    card = v2_card("Brass", description="gruff", alternate_greetings=["Ahoy"], tags=["airship"],
                   creator_notes="notes", system_prompt="sys", character_version="1.2",
                   extensions={"depth_prompt": {"depth": 4, "prompt": "x"}, "fav": True})
    character = load_card_bytes(_json(card), "brass.json")
    assert character.spec == "v2" and character.description == "gruff"
    assert character.alternate_greetings == ["Ahoy"] and character.tags == ["airship"]
    assert character.extensions == {"depth_prompt": {"depth": 4, "prompt": "x"}, "fav": True}


def test_v2_card_nulls_count_as_missing() -> None:
    card = v2_card("Brass", description=None, tags=None, alternate_greetings=None, character_book=None)
    character = load_card_bytes(_json(card), "brass.json")
    assert (character.description, character.tags, character.lorebook) == ("", [], None)


def test_v2_character_book_becomes_the_lorebook() -> None:
    book = {"scan_depth": 3, "token_budget": 200, "entries": [
        {"keys": ["engine"], "content": "Steam.", "enabled": True, "insertion_order": 5,
         "priority": 2, "position": "after_char", "extensions": {"depth": 4}}]}
    character = load_card_bytes(_json(v2_card(character_book=book)), "brass.json")
    assert character.lorebook is not None and character.lorebook.scan_depth == 3
    entry = character.lorebook.entries[0]
    assert (entry.keys, entry.position, entry.priority, entry.extensions) == (
        ["engine"], "after_char", 2, {"depth": 4})


def test_lorebook_entry_with_odd_position_is_read_with_a_warning() -> None:
    book = {"entries": [{"keys": ["a"], "content": "b", "position": 0}]}
    character = load_card_bytes(_json(v2_card(character_book=book)), "brass.json")
    assert character.lorebook is not None and character.lorebook.entries[0].position == "before_char"
    assert any("position" in warning for warning in character.warnings)


def test_sillytavern_match_whole_words_is_read_from_entry_extensions() -> None:
    book = {"extensions": {"match_whole_words": False}, "entries": [
        {"keys": ["cat"], "content": "c", "extensions": {"match_whole_words": True, "sticky": 2}},
        {"keys": ["dog"], "content": "d", "extensions": {"match_whole_words": None}}]}
    character = load_card_bytes(_json(v2_card(character_book=book)), "brass.json")
    assert character.lorebook is not None and character.lorebook.match_whole_words is False
    first, second = character.lorebook.entries
    assert (first.match_whole_words, second.match_whole_words) == (True, None)
    assert first.extensions == {"match_whole_words": True, "sticky": 2}


def test_match_whole_words_that_is_not_a_boolean_is_ignored_with_a_warning() -> None:
    book = {"entries": [{"keys": ["cat"], "content": "c", "extensions": {"match_whole_words": "yes"}}]}
    character = load_card_bytes(_json(v2_card(character_book=book)), "brass.json")
    assert character.lorebook is not None and character.lorebook.entries[0].match_whole_words is None
    assert any("match_whole_words" in warning for warning in character.warnings)


def test_lorebook_entry_with_wrong_key_type_names_the_entry() -> None:
    book = {"entries": [{"keys": ["a"], "content": "ok"}, {"keys": "b", "content": "bad"}]}
    with pytest.raises(CardError, match=r"data\.character_book\.entries\[1\]\.keys' must be a list of strings"):
        load_card_bytes(_json(v2_card(character_book=book)), "brass.json")


def test_v3_card_reads_nickname_and_group_greetings() -> None:
    card = v3_card("Quill", nickname="Prof", group_only_greetings=["Class!"])
    character = load_card_bytes(_json(card), "quill.json")
    assert (character.spec, character.nickname, character.group_only_greetings) == ("v3", "Prof", ["Class!"])
    assert character.display_name == "Prof"


def test_v3_lorebook_decorators_are_taken_out_of_the_content() -> None:
    book = {"entries": [{"keys": ["ink"], "content": "@@depth 4\n@@activate_only_after 2\nInk is blue."}]}
    character = load_card_bytes(_json(v3_card(character_book=book)), "quill.json")
    assert character.lorebook is not None
    entry = character.lorebook.entries[0]
    assert entry.content == "Ink is blue."
    assert entry.extensions[DECORATORS_KEY] == ["@@depth 4", "@@activate_only_after 2"]


def test_v2_lorebook_content_is_left_as_it_is() -> None:
    book = {"entries": [{"keys": ["ink"], "content": "@@depth 4\nInk."}]}
    character = load_card_bytes(_json(v2_card(character_book=book)), "brass.json")
    assert character.lorebook is not None and character.lorebook.entries[0].content == "@@depth 4\nInk."


@pytest.mark.parametrize("version", ["3.0", "3.5", 3, "10.1"])
def test_v3_spec_version_three_or_higher_loads_without_warnings(version: object) -> None:
    card = {**v3_card(), "spec_version": version}
    assert load_card_bytes(_json(card), "quill.json").warnings == []


def test_v3_spec_version_compares_as_a_number_not_text() -> None:
    card = {**v3_card(), "spec_version": "2.9"}
    character = load_card_bytes(_json(card), "quill.json")
    assert character.spec == "v3" and any("below 3.0" in warning for warning in character.warnings)


def test_newer_spec_name_is_read_as_v3_with_a_warning() -> None:
    card = {**v3_card(), "spec": "chara_card_v4"}
    character = load_card_bytes(_json(card), "quill.json")
    assert character.spec == "v3" and any("newer" in warning for warning in character.warnings)


def test_unknown_spec_is_refused() -> None:
    with pytest.raises(CardError, match="unknown card spec 'my_card'"):
        load_card_bytes(_json({"spec": "my_card", "data": {"name": "X"}}), "x.json")


def test_spec_card_without_data_is_refused() -> None:
    with pytest.raises(CardError, match="field 'data' is missing"):
        load_card_bytes(_json({"spec": "chara_card_v2", "name": "X"}), "x.json")


def test_troupe_extension_fills_troupe_fields_and_leaves_extensions() -> None:
    troupe = {"stop_strings": ["\n[A]:"], "wake_words": ["captain"], "sampling": {"temperature": 0.5},
              "avatar": "https://example.com/b.png", "nickname": "Cap"}
    character = load_card_bytes(_json(v2_card(extensions={"troupe": troupe, "other": 1})), "brass.json")
    assert character.stop_strings == ["\n[A]:"] and character.wake_words == ["captain"]
    assert character.nickname == "Cap" and character.avatar == "https://example.com/b.png"
    assert character.extensions == {"other": 1}


# ----------------------------------------------------------------------------- legacy shapes

def test_pygmalion_json_maps_its_fields() -> None:
    card = {"char_name": "Pyg", "char_persona": "p", "char_greeting": "g",
            "world_scenario": "w", "example_dialogue": "e"}
    character = load_card_bytes(_json(card), "pyg.json")
    assert character.spec == "pygmalion"
    assert (character.name, character.description, character.first_mes, character.scenario,
            character.mes_example) == ("Pyg", "p", "g", "w", "e")


def test_ooba_yaml_context_becomes_the_description() -> None:
    character = load_card_bytes(b"name: Helper\ngreeting: Hello\ncontext: A helpful bot.\n", "helper.yaml")
    assert character.spec == "ooba"
    assert (character.name, character.first_mes, character.description) == ("Helper", "Hello", "A helpful bot.")


def test_format_is_detected_by_content_not_extension() -> None:
    character = load_card_bytes(_json(v2_card("Brass")), "upload.txt")
    assert character.spec == "v2" and character.source == "upload.txt"


def test_utf8_bom_is_accepted() -> None:
    character = load_card_bytes(b"\xef\xbb\xbf" + _json(v2_card("Brass")), "brass.json")
    assert character.name == "Brass"


def test_load_card_sets_source_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "brass.json"
    path.write_bytes(_json(v2_card("Brass")))
    assert load_card(path).source == str(path)
