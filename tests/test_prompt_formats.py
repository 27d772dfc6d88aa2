"""Prompt format templates."""

from __future__ import annotations

import pytest

from bot.config import PromptConfig
from bot.errors import PromptError
from bot.prompt.formats import TEMPLATES, get_template


def test_every_configurable_format_but_auto_has_a_template() -> None:
    formats = PromptConfig.model_fields["format"].annotation.__args__  # type: ignore[union-attr]
    assert set(formats) == {*TEMPLATES, "auto"}  # auto is the model's own: see test_chat_template.py


def test_unknown_format_is_a_prompt_error() -> None:
    with pytest.raises(PromptError, match="unknown prompt format 'vicuna'"):
        get_template("vicuna")


def test_wrap_puts_content_between_the_role_markers() -> None:
    assert get_template("chatml").wrap("user", "[Bob]: hi") == "<|im_start|>user\n[Bob]: hi<|im_end|>\n"


def test_open_assistant_leaves_the_message_open() -> None:
    assert get_template("llama3").open_assistant("[Aria]:") == (
        "<|start_header_id|>assistant<|end_header_id|>\n\n[Aria]:"
    )


def test_transcript_notes_are_marked_as_system_notes() -> None:
    assert get_template("transcript").wrap_note("Be brief.") == "(Note: Be brief.)\n"


@pytest.mark.parametrize("name", [n for n in TEMPLATES if n != "transcript"])
def test_instruct_formats_declare_their_turn_end_stop(name: str) -> None:
    template = get_template(name)
    assert template.stops
    assert any(stop in template.assistant[1] or stop in template.user[0] for stop in template.stops)
