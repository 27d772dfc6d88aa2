"""CharacterLibrary: a folder of cards, lookups, broken cards, duplicates and imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cards_support import b64_json, insert_chunks, png_image, text_chunk, v2_card

from bot.cards import CharacterLibrary
from bot.errors import CardError


def _v2(name: str, **data: object) -> bytes:
    return json.dumps(v2_card(name, **data)).encode()


def _png_card(name: str) -> bytes:
    return insert_chunks(png_image(), [text_chunk("chara", b64_json(v2_card(name)))])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "characters"
    path.mkdir()
    (path / "aria.yaml").write_text("name: Aria\nnickname: Ari\npersona: A keeper.\n")
    (path / "brass.json").write_bytes(_v2("Captain Brass"))
    (path / "quill.png").write_bytes(_png_card("Professor Quill"))
    return path


@pytest.fixture
def library(folder: Path) -> CharacterLibrary:
    library = CharacterLibrary(folder)
    assert library.load() == []
    return library


def test_load_reads_every_card_format_in_the_folder(library: CharacterLibrary) -> None:
    assert library.names() == ["Aria", "Captain Brass", "Professor Quill"]
    assert len(library) == 3


def test_get_is_case_insensitive(library: CharacterLibrary) -> None:
    found = library.get("captain BRASS")
    assert found is not None and found.name == "Captain Brass"


def test_get_finds_a_nickname(library: CharacterLibrary) -> None:
    found = library.get("ari")
    assert found is not None and found.name == "Aria"


def test_get_unknown_name_is_none(library: CharacterLibrary) -> None:
    assert library.get("Nobody") is None


def test_contains_uses_the_same_lookup(library: CharacterLibrary) -> None:
    assert "aria" in library and "ARI" in library and "Nobody" not in library and 5 not in library


def test_all_returns_characters_sorted_by_name(library: CharacterLibrary) -> None:
    assert [c.name for c in library.all()] == ["Aria", "Captain Brass", "Professor Quill"]


def test_loaded_characters_know_their_file(library: CharacterLibrary, folder: Path) -> None:
    found = library.get("Aria")
    assert found is not None and found.source == str(folder / "aria.yaml")


def test_broken_card_is_reported_and_the_others_still_load(folder: Path) -> None:
    (folder / "broken.json").write_text('{"spec": "chara_card_v2", "data": {"name": 5}}')
    library = CharacterLibrary(folder)
    errors = library.load()
    assert library.names() == ["Aria", "Captain Brass", "Professor Quill"]
    assert len(errors) == 1 and errors[0].source == str(folder / "broken.json")
    assert "field 'data.name' must be a string" in errors[0].problem
    assert library.errors == errors


def test_duplicate_name_second_file_is_an_error_naming_both(folder: Path) -> None:
    (folder / "zz-aria-copy.json").write_bytes(_v2("ARIA"))
    library = CharacterLibrary(folder)
    errors = library.load()
    assert len(errors) == 1 and errors[0].source == str(folder / "zz-aria-copy.json")
    assert "aria.yaml" in errors[0].problem and "zz-aria-copy.json" in errors[0].problem
    found = library.get("aria")
    assert found is not None and found.spec == "troupe"


def test_non_card_files_are_skipped(folder: Path) -> None:
    (folder / "README.md").write_text("# my characters\n")
    (folder / "notes.txt").write_text("name: Not A Card\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff not really")
    (folder / ".aria.yaml.swp").write_text("garbage")
    (folder / "subfolder").mkdir()
    library = CharacterLibrary(folder)
    assert library.load() == [] and len(library) == 3


def test_avatar_image_referenced_by_a_yaml_card_is_not_a_card(folder: Path) -> None:
    (folder / "aria-face.png").write_bytes(png_image())
    (folder / "aria.yaml").write_text("name: Aria\navatar: aria-face.png\n")
    library = CharacterLibrary(folder)
    assert library.load() == []
    found = library.get("Aria")
    assert found is not None and found.avatar_png == png_image()


def test_unreferenced_png_without_card_data_is_reported(folder: Path) -> None:
    (folder / "stray.png").write_bytes(png_image())
    errors = CharacterLibrary(folder).load()
    assert [e.source for e in errors] == [str(folder / "stray.png")]
    assert "no character data" in errors[0].problem


def test_png_card_used_as_an_avatar_still_loads_as_a_card(folder: Path) -> None:
    (folder / "aria.yaml").write_text("name: Aria\navatar: quill.png\n")
    library = CharacterLibrary(folder)
    assert library.load() == [] and "Professor Quill" in library


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    library = CharacterLibrary(tmp_path / "nowhere")
    errors = library.load()
    assert len(errors) == 1 and "not found" in errors[0].problem and len(library) == 0


def test_reload_sees_added_changed_and_removed_files(library: CharacterLibrary, folder: Path) -> None:
    (folder / "brass.json").unlink()
    (folder / "new.yaml").write_text("name: Newcomer\n")
    (folder / "aria.yaml").write_text("name: Aria\npersona: Changed.\n")
    assert library.reload() == []
    assert library.names() == ["Aria", "Newcomer", "Professor Quill"]
    found = library.get("aria")
    assert found is not None and found.description == "Changed."


def test_reload_clears_errors_that_were_fixed(folder: Path) -> None:
    (folder / "broken.yaml").write_text("name: [\n")
    library = CharacterLibrary(folder)
    assert len(library.load()) == 1
    (folder / "broken.yaml").write_text("name: Fixed\n")
    assert library.reload() == [] and library.errors == [] and "Fixed" in library


# ----------------------------------------------------------------------------- import_card

def test_import_writes_the_original_bytes_and_adds_the_character(library: CharacterLibrary, folder: Path) -> None:
    data = _v2("Newcomer", description="fresh")
    character = library.import_card(data, "newcomer.json")
    assert (folder / "newcomer.json").read_bytes() == data
    assert character.source == str(folder / "newcomer.json")
    assert library.get("newcomer") == character


def test_import_survives_a_reload(library: CharacterLibrary) -> None:
    library.import_card(_png_card("Pictured"), "pictured.png")
    assert library.reload() == [] and "Pictured" in library


def test_import_refuses_an_existing_name(library: CharacterLibrary, folder: Path) -> None:
    with pytest.raises(CardError) as caught:
        library.import_card(_v2("aria"), "other.json")
    assert "already exists (aria.yaml)" in caught.value.problem and caught.value.source == "other.json"
    assert not (folder / "other.json").exists()


def test_import_refuses_an_existing_file(library: CharacterLibrary, folder: Path) -> None:
    with pytest.raises(CardError, match="brass.json already exists"):
        library.import_card(_v2("Someone Else"), "brass.json")
    assert json.loads((folder / "brass.json").read_text())["data"]["name"] == "Captain Brass"


def test_import_with_overwrite_replaces_the_same_file(library: CharacterLibrary, folder: Path) -> None:
    library.import_card(_v2("Captain Brass", description="new"), "brass.json", overwrite=True)
    found = library.get("Captain Brass")
    assert found is not None and found.description == "new"
    assert json.loads((folder / "brass.json").read_text())["data"]["description"] == "new"


def test_import_with_overwrite_of_a_name_removes_its_old_file(library: CharacterLibrary, folder: Path) -> None:
    library.import_card(_png_card("Aria"), "aria-v2.png", overwrite=True)
    assert not (folder / "aria.yaml").exists() and (folder / "aria-v2.png").exists()
    assert library.reload() == [] and library.get("Aria") is not None


def test_import_over_another_characters_file_drops_that_character(library: CharacterLibrary) -> None:
    library.import_card(_v2("Replacement"), "brass.json", overwrite=True)
    assert "Captain Brass" not in library and "Replacement" in library


def test_import_of_a_broken_card_writes_nothing(library: CharacterLibrary, folder: Path) -> None:
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(CardError):
        library.import_card(b"name: [\n", "broken.yaml")
    assert sorted(p.name for p in folder.iterdir()) == before and len(library) == 3


@pytest.mark.parametrize(("filename", "expected"), [
    ("../../etc/evil.json", "evil.json"),
    ("C:\\Users\\me\\Downloads\\My Card!.json", "My-Card.json"),
    (".hidden.json", "hidden.json"),
    ("card.txt", "card.json"),
    ("ünïcödé.json", "unicode.json"),
])
def test_import_sanitises_the_file_name(library: CharacterLibrary, folder: Path, filename: str, expected: str) -> None:
    character = library.import_card(_v2("Sanitised"), filename)
    assert character.source == str(folder / expected) and (folder / expected).exists()


def test_import_with_an_unusable_file_name_uses_the_character_name(library: CharacterLibrary, folder: Path) -> None:
    library.import_card(_v2("Zed the Bold"), "???.json")
    assert (folder / "Zed-the-Bold.json").exists()


def test_import_leaves_no_temporary_files(library: CharacterLibrary, folder: Path) -> None:
    library.import_card(_v2("Tidy"), "tidy.json")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_changed_notices_cards_added_edited_and_removed(tmp_path: Path) -> None:
    (tmp_path / "nova.json").write_bytes(_v2("Nova"))
    library = CharacterLibrary(tmp_path)
    library.load()
    assert not library.changed()
    (tmp_path / "orin.json").write_bytes(_v2("Orin"))
    assert library.changed()
    library.reload()
    assert not library.changed() and "Orin" in library
    (tmp_path / "orin.json").write_bytes(_v2("Orin", description="Now with a longer description."))
    assert library.changed()
    library.reload()
    (tmp_path / "nova.json").unlink()
    assert library.changed()
    library.reload()
    assert library.names() == ["Orin"] and not library.changed()


def test_changed_ignores_dot_files_and_survives_a_missing_folder(tmp_path: Path) -> None:
    library = CharacterLibrary(tmp_path / "cards")
    library.load()
    assert not library.changed()
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / ".nova.json.swp").write_bytes(b"editor scratch")
    assert not library.changed()
    (tmp_path / "cards" / "nova.json").write_bytes(_v2("Nova"))
    assert library.changed()


def test_a_card_broken_by_an_edit_keeps_its_last_good_version(tmp_path: Path) -> None:
    (tmp_path / "nova.json").write_bytes(_v2("Nova", description="A star pilot."))
    library = CharacterLibrary(tmp_path)
    library.load()
    (tmp_path / "nova.json").write_bytes(_v2("Nova", description="A star pilot.")[:25])  # saved half-way
    errors = library.reload()
    nova = library.get("Nova")
    assert nova is not None and nova.description == "A star pilot."
    assert len(errors) == 1 and "nova.json" in str(errors[0]) and "version loaded before stays in use" in str(errors[0])
    (tmp_path / "nova.json").write_bytes(_v2("Nova", description="A star pilot, now retired."))
    assert library.reload() == []
    assert library.get("Nova").description == "A star pilot, now retired."  # type: ignore[union-attr]


def test_a_new_card_that_is_broken_is_not_loaded(tmp_path: Path) -> None:
    library = CharacterLibrary(tmp_path)
    library.load()
    (tmp_path / "nova.json").write_text("{not json")
    errors = library.reload()
    assert len(library) == 0 and len(errors) == 1 and "stays in use" not in str(errors[0])
