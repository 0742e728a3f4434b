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
_WORD = re.compile(r"[^\W_]+")
_MAX_CACHE = 1_000_000  # distinct surface words; bounds memory on adversarial input

# Words that phrase a question or a request rather than name its subject: "How do I run phi-4-mini on
# Ollama?" is about phi-4-mini and Ollama. Dropped from queries only (documents keep every word), and
# only while something else is left. Without this, "can", "i", "do" and "how" outweighed "vllm" for
# "Can I use vLLM with this chat?" (BENCHMARKS.md, the first-contact question set).
QUESTION_WORDS = frozenset(
    "how what when where which who whom whose why whether "
    "do does did doing done can could should would shall may might must "
    "i me my mine myself we us our ours you your yours "
    "am been being please tell explain know want wanted need needs get got make makes let "
    "use using here thing things way anything something someone somebody so also just really actually like okay ok "
    "now again kind sort".split()
)


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
        return self._terms(_WORD.findall(text.casefold()))

    def _terms(self, words: list[str]) -> list[str]:
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
        """Distinct terms of a query, in first-seen order: a repeated word does not count twice.

        Question words ("how", "can", "i", ...) are left out when the query has other terms.
        """
        words = _WORD.findall(text.casefold())
        subject = [w for w in words if w not in QUESTION_WORDS]
        return list(dict.fromkeys(self._terms(subject) or self._terms(words)))
