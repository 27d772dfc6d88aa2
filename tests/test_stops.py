"""StopScanner: cutting a streamed reply at stop strings, wherever the chunks split."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from bot.prompt.stops import StopScanner

STOPS = ("\n[Bob]:", "\n[", "<|im_end|>", "</s>")


def run(
    chunks: Iterable[str], stops: Sequence[str] = STOPS, *, name: str | None = "Aria"
) -> tuple[str, StopScanner]:
    scanner = StopScanner(stops, character_name=name)
    out = []
    for chunk in chunks:
        out.append(scanner.feed(chunk))
    out.append(scanner.finish())
    return "".join(out), scanner


def splits(text: str) -> Iterable[list[str]]:
    """Every two-piece split, every three-piece split, one char per chunk, and random chunkings."""
    for i in range(len(text) + 1):
        yield [text[:i], text[i:]]
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            yield [text[:i], text[i:j], text[j:]]
    yield list(text)
    rng = random.Random(1234)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), k=rng.randint(1, min(8, len(text) - 1))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def test_stop_in_one_chunk_cuts_the_reply() -> None:
    text, scanner = run([" Hello there!\n[Bob]: I am Bob"])
    assert text == "Hello there!"
    assert scanner.stopped and scanner.stop == "\n[Bob]:"


def test_stop_split_at_every_position_is_cut() -> None:
    reply = " Hi Bob, how are you?\n[Bob]: fine thanks\nmore"
    for chunks in splits(reply):
        text, scanner = run(chunks)
        assert text == "Hi Bob, how are you?", chunks
        # the cut is the same; which of two stops starting there is named depends on when it is seen
        assert scanner.stop in {"\n[Bob]:", "\n["}, chunks


def test_earliest_stop_wins_across_chunks() -> None:
    reply = "one</s>two<|im_end|>three"
    for chunks in splits(reply):
        text, scanner = run(chunks)
        assert (text, scanner.stop) == ("one", "</s>"), chunks


def test_text_that_only_looks_like_a_stop_start_is_emitted() -> None:
    reply = "a < b and c </ d\n(not a turn) <|x"
    for chunks in splits(reply):
        text, scanner = run(chunks)
        assert text == reply and not scanner.stopped, chunks


def test_held_back_tail_is_never_emitted_before_it_is_decided() -> None:
    scanner = StopScanner(["<|im_end|>"])
    assert scanner.feed("Hello <|im") == "Hello"
    assert scanner.feed("_en") == ""
    assert scanner.feed("d|> after") == ""
    assert scanner.stopped


def test_nothing_after_a_stop_is_emitted() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.feed("keep STOP drop") == "keep"
    assert scanner.feed("more text") == ""
    assert scanner.finish() == ""


def test_no_stop_hit_returns_the_whole_reply() -> None:
    text, scanner = run(["Just ", "a reply", " with [brackets] inline."])
    assert text == "Just a reply with [brackets] inline."
    assert not scanner.stopped and scanner.stop is None


def test_own_name_at_the_start_is_trimmed_wherever_it_splits() -> None:
    reply = "  \n[Aria]:  Hello!\n[Bob]: x"
    for chunks in splits(reply):
        text, _ = run(chunks)
        assert text == "Hello!", chunks


def test_reply_opening_with_someone_elses_name_is_cut_to_nothing() -> None:
    text, scanner = run(["[Bo", "b]: hi"])
    assert text == "" and scanner.stopped and scanner.stop == "[Bob]:"


def test_bracketed_action_at_the_start_is_kept() -> None:
    text, scanner = run(["[lau", "ghs] fine, fine"])
    assert text == "[laughs] fine, fine" and not scanner.stopped


def test_reply_opening_with_another_speakers_line_is_cut_to_nothing() -> None:
    text, scanner = run(["\n[Bob]: I speak for Bob"])
    assert text == "" and scanner.stopped


def test_partial_own_name_at_the_end_is_flushed() -> None:
    text, _ = run(["[Ar"])
    assert text == "[Ar"


def test_own_name_later_in_the_reply_is_kept() -> None:
    text, _ = run(["I said [Aria]: hi"])
    assert text == "I said [Aria]: hi"


def test_leading_and_trailing_whitespace_is_dropped() -> None:
    for chunks in splits("  \n hi  there \n\n "):
        text, _ = run(chunks, stops=())
        assert text == "hi  there", chunks


def test_inner_whitespace_survives_chunk_boundaries() -> None:
    scanner = StopScanner([])
    assert scanner.feed("a ") == "a"
    assert scanner.feed(" b") == "  b"
    assert scanner.finish() == ""


def test_unfinished_stop_prefix_is_flushed_at_the_end() -> None:
    text, scanner = run(["The end <|im_"])
    assert text == "The end <|im_" and not scanner.stopped


def test_leading_whitespace_can_be_kept_for_a_prefill() -> None:
    scanner = StopScanner(["\n["], strip_leading=False)
    assert scanner.feed(" continues") == " continues"


def test_trailing_whitespace_can_be_kept_to_cut_text_byte_for_byte() -> None:
    scanner = StopScanner(["\n[Bob]:"], strip_leading=False, trim_trailing=False)
    pieces = [scanner.feed(" a \n"), scanner.feed(" b  "), scanner.feed("\n[Bob]: no")]
    assert "".join(pieces) == " a \n b  " and scanner.stopped


def test_empty_stop_strings_are_ignored() -> None:
    text, scanner = run(["hello"], stops=("", "\n["))
    assert text == "hello" and not scanner.stopped


def test_held_back_text_stays_shorter_than_the_longest_stop() -> None:
    scanner = StopScanner(list(STOPS) + [f"\n[User{i}]:" for i in range(20)])
    for _ in range(20_000):
        scanner.feed("word [x] ")
    assert len(scanner._pending) < max(len(s) for s in scanner.stops)
