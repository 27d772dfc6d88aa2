"""The reasoning filter: thinking out, the answer through, whatever the chunking."""

from __future__ import annotations

import pytest

from bot.prompt.reasoning import ReasoningFilter, prompt_opens_thinking, strip_reasoning

THINK = "<think>Bob wants stew. Keep it short.</think>\n\nThe stew, always."
GPT_OSS = (
    "<|channel|>analysis<|message|>Bob wants stew. Keep it short.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>The stew, always.<|return|>"
)


def run(text: str, size: int, **kwargs: bool) -> tuple[str, str]:
    reply = ReasoningFilter(**kwargs)
    pieces = [reply.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(pieces) + reply.finish(), reply.reasoning


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 100])
def test_a_think_block_is_kept_out_of_the_answer_however_it_is_chunked(size: int) -> None:
    assert run(THINK, size) == ("\n\nThe stew, always.", "Bob wants stew. Keep it short.")


@pytest.mark.parametrize("size", [1, 4, 7, 100])
def test_thinking_the_prompt_opened_ends_at_the_bare_closing_tag(size: int) -> None:
    text = "Bob wants stew.\n</think>\n\nThe stew, always."
    assert run(text, size, thinking=True) == ("\n\nThe stew, always.", "Bob wants stew.")


@pytest.mark.parametrize("size", [1, 3, 6, 11, 100])
def test_gpt_oss_analysis_channel_is_kept_out_and_the_final_channel_shown(size: int) -> None:
    assert run(GPT_OSS, size) == ("The stew, always.", "Bob wants stew. Keep it short.")


@pytest.mark.parametrize("text", ["a < b, <3 and <b>bold</b>", "[Aria]: 1 <2 <", "<|im_end|> <end_of_turn> <|end|>"])
def test_text_without_thinking_passes_unchanged(text: str) -> None:
    assert run(text, 1) == (text, "")


def test_a_partial_marker_at_the_end_is_text_after_all() -> None:
    assert run("I am <thin", 3) == ("I am <thin", "")


def test_a_reply_that_is_only_thinking_shows_nothing() -> None:
    assert run("<think>Hmm. Nothing to say.</think>", 4) == ("", "Hmm. Nothing to say.")


def test_unfinished_thinking_stays_thinking() -> None:
    assert run("<think>Still going when the tokens ran out", 5) == ("", "Still going when the tokens ran out")


def test_thinking_a_server_sent_apart_is_collected() -> None:
    reply = ReasoningFilter()
    reply.add_reasoning("Bob wants ")
    reply.add_reasoning("stew.")
    assert reply.feed("The stew.") == "The stew." and reply.reasoning == "Bob wants stew."


def test_only_a_think_tag_at_the_very_end_of_a_prompt_opens_thinking() -> None:
    assert prompt_opens_thinking("<｜User｜>[Bob]: hi<｜Assistant｜><think>\n")
    assert not prompt_opens_thinking("[Bob]: <think>\n[Aria]:")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("<think>Bob again.</think>\n\nHello, Bob!", "Hello, Bob!"),
        ("Bob again.\n</think>\n\nHello, Bob!", "Hello, Bob!"),
        (GPT_OSS, "The stew, always."),
        (" Hello, Bob! ", " Hello, Bob! "),
    ],
)
def test_a_past_reply_loses_its_thinking(text: str, kept: str) -> None:
    assert strip_reasoning(text) == kept
