"""The words memory searches by, the same on every store engine.

Pure: no I/O. A text's search words are its words lower-cased, without common function
words and chat filler, cut of a few English suffixes (``lives``, ``live`` and ``living`` -> ``liv``,
``parrots`` -> ``parrot``), so a question finds a message that says the same thing in another form. The
store indexes :func:`index_words` of each message and searches :func:`query_terms` of the
asking one: both engines match the same words exactly (no engine stemmer or prefix scan).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["STOPWORDS", "MAX_TERMS", "stem", "index_words", "query_terms"]

#: search terms per message at most (the longest words are kept: they say the most)
MAX_TERMS = 8
_MIN_LENGTH = 3
_SUFFIXES = ("ing", "ies", "ed", "es", "s")
_WORD = re.compile(r"\w+")

#: words that say nothing about what a message is about
STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before being
below between both but by can cannot could couldn did didn do does doesn doing don down during each
else ever few for from further get gets got had hadn has hasn have haven having he her here hers herself
him himself his how i if in into is isn it its itself just let like lot me more most much must my
myself no nor not now of off on once only or other ought our ours ourselves out over own really remember
said same say says she should so some such tell than that the their theirs them themselves then there
these they thing things think this those through to too under until up upon us very was wasn we well
were weren what when where which while who whom why will with won would wouldn yes yet you your yours
yourself yourselves hey hello hi okay ok oh yeah yep nope please thanks thank lol know want going
something anything everything one two
""".split())


def stem(word: str) -> str:
    """``word`` (lower case) without one common English suffix and a final ``e``, keeping at
    least three letters: ``live``, ``lives``, ``lived``, ``living`` are all ``liv``."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_LENGTH:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > _MIN_LENGTH else word


def _content_words(text: str, ignored: frozenset[str] = frozenset()) -> list[str]:
    found = []
    for word in _WORD.findall(text.casefold().replace("'s", "").replace("’s", "")):
        if len(word) < _MIN_LENGTH or word in STOPWORDS or word in ignored or word.isdigit():
            continue
        found.append(stem(word))
    return found


def index_words(text: str) -> str:
    """What the store indexes for a message: its content words as stems, space-separated."""
    return " ".join(dict.fromkeys(_content_words(text)))


def query_terms(text: str, *, ignore: Iterable[str] = ()) -> tuple[str, ...]:
    """The search terms of ``text``: its content words as stems, longest (most telling)
    first, at most :data:`MAX_TERMS`; words of the ``ignore`` names are left out."""
    ignored = frozenset(w for name in ignore for w in _WORD.findall(name.casefold()))
    terms = dict.fromkeys(_content_words(text, ignored))
    return tuple(sorted(terms, key=len, reverse=True)[:MAX_TERMS])
