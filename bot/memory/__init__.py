"""Memory beyond the prompt window: seen messages kept per channel and recalled when relevant."""

from __future__ import annotations

from bot.memory.recall import needed
from bot.memory.service import Memory
from bot.memory.words import index_words, query_terms

__all__ = ["Memory", "index_words", "query_terms", "needed"]
