"""The words memory searches by: the same stems for a question and the message it is about."""

from __future__ import annotations

from bot.memory import index_words, needed, query_terms
from bot.memory.words import MAX_TERMS, stem


def test_forms_of_a_word_share_one_stem() -> None:
    assert {stem(w) for w in ("live", "lives", "lived", "living")} == {"liv"}
    assert stem("parrots") == "parrot" and stem("cat") == "cat"


def test_function_words_short_words_and_numbers_are_not_terms() -> None:
    assert query_terms("Where is it, and what do you think of 42?") == ()


def test_names_to_ignore_are_left_out() -> None:
    assert query_terms("@Aria where does my sister live?", ignore=["Aria"]) == ("sister", "liv")


def test_a_question_and_the_message_it_is_about_share_their_terms() -> None:
    words = set(index_words("My sister Marguerite lives in Lisbon with three parrots.").split())
    assert set(query_terms("Where does Alice's sister live?")) - {stem("alice")} <= words


def test_at_most_the_longest_terms_are_kept() -> None:
    terms = query_terms("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo")
    assert len(terms) == MAX_TERMS and terms[0] == "foxtrot"


def test_one_term_must_match_alone_more_need_two() -> None:
    assert needed(("lisbon",)) == 1 and needed(("sister", "liv")) == 2
