"""The text analyzer shared by indexing and querying: Unicode word tokens, lowercase, stopwords, stemming.

On BEIR SciFact, tokenization moves nDCG@10 more than the choice of BM25 library does (FACTS.md): plain
whitespace splitting gives 0.560, regex word tokens 0.654, and stopwords plus Snowball stemming 0.68+.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

# \w is Unicode-aware in Python 3: accented Latin, Greek, CJK ideographs and digits are word characters.
# Splitting on everything else turns "phi-4-mini" into phi / 4 / mini, as a user's query would.
_WORD = re.compile(r"\w+")
_MAX_CACHE = 1_000_000  # distinct surface words; bounds memory on adversarial input


class Analyzer:
    """Turns text into index terms. One instance serves both documents and queries."""

    def __init__(self, stopwords: Iterable[str] = STOPWORDS_EN, language: str = "english") -> None:
        self.stopwords = frozenset(stopwords)
        self._stemmer = Stemmer.Stemmer(language)
        self.language = language
        # Surface word -> term ("" for a stopword). Natural text reuses a small vocabulary, so caching
        # turns per-word stemming and stopword checks into C-speed dict lookups: indexing 10k chunks
        # went from 1.6 s to about 0.5 s of analysis (BENCHMARKS.md).
        self._cache: dict[str, str] = {}

    def terms(self, text: str) -> list[str]:
        """Index terms of `text`, in order, with repeats (term frequency matters to BM25)."""
        words = _WORD.findall(text.casefold())
        cache = self._cache
        missing = set(words).difference(cache)
        if missing:
            if len(cache) > _MAX_CACHE:
                cache.clear()
            fresh = sorted(missing)
            for word, stem in zip(fresh, self._stemmer.stemWords(fresh)):
                cache[word] = "" if word in self.stopwords or not word.strip("_") else stem
        return [term for term in map(cache.__getitem__, words) if term]

    def query_terms(self, text: str) -> list[str]:
        """Distinct terms of a query, in first-seen order: a repeated word does not count twice."""
        return list(dict.fromkeys(self.terms(text)))
