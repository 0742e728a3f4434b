"""The answer-side support check: how much of a draft the passages it cites actually support.

No logprobs needed (Foundry Local returns none): each sentence's content words (analysed like the index:
stopwords out, stemmed, so "escalates" meets "escalation") are looked up in the passages the sentence
cites. A sentence is supported when at least SENTENCE_SUPPORT of its content words are found there or in
the question (restating the question is not an invention). The draft's support is the share of its
content words that sit in supported sentences.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rag.index.analysis import Analyzer
from rag.citations import cited_sources
from rag.index.search import index_text
from rag.types import Passage

SENTENCE_SUPPORT = 0.5
MIN_TERMS = 2  # shorter sentences ("Yes.", "In short:") say nothing checkable

_PARAGRAPHS = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_SENTENCES = re.compile(r"(?<=[.!?。！？।])[\"')\]]*\s+|(?<=[。！？])|\n")
_CITATIONS = re.compile(r"\[\d{1,2}(?:\s*[,\-–]\s*\d{1,2})*\]")
# Link targets and bare URLs are addresses, not claims: their words are not looked up in the passages.
_ADDRESSES = re.compile(r"\]\([^)\s]*\)|<?\b(?:https?|ftp)://[^\s>)]+>?|\bwww\.[^\s)]+")


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of a draft: which sources it is checked against, and how many of its words they hold."""

    text: str
    sources: tuple[int, ...]
    terms: int
    found: int

    @property
    def supported(self) -> bool:
        return self.terms > 0 and self.found / self.terms >= SENTENCE_SUPPORT


@dataclass(frozen=True)
class DraftSupport:
    """The draft's sentences and the share of its content words in supported sentences."""

    share: float
    sentences: tuple[SentenceSupport, ...]


def draft_support(answer: str, sources: Sequence[Passage], question_terms: Collection[str],
                  analyzer: Analyzer) -> DraftSupport | None:
    """How well `sources` (the prompt's [1], [2], ...) support `answer`; None when nothing is checkable
    (no sources, or no sentence with enough content words). `question_terms`: the question as retrieval
    analysed it (words of the question count as given, not invented)."""
    if not sources:
        return None
    passage_terms = [frozenset(analyzer.terms(index_text(p.chunk))) for p in sources]
    given = frozenset(question_terms)
    everything = tuple(range(1, len(sources) + 1))
    answer_cites = cited_sources(answer, len(sources)) or everything

    checked: list[SentenceSupport] = []
    for paragraph in _PARAGRAPHS.split(answer):
        sentences = [s.strip() for s in _SENTENCES.split(paragraph) if s and s.strip()]
        cites = [cited_sources(s, len(sources)) for s in sentences]
        for i, sentence in enumerate(sentences):
            # An uncited sentence leans on the next citation in its paragraph ("X does Y. It also Z [2]."),
            # else the previous one, else whatever the answer cites anywhere.
            own = cites[i] or next((c for c in cites[i + 1:] if c), ()) or next(
                (c for c in reversed(cites[:i]) if c), ()) or answer_cites
            terms = set(analyzer.terms(_ADDRESSES.sub("] ", _CITATIONS.sub(" ", sentence))))
            if len(terms) < MIN_TERMS:
                continue
            pool = given.union(*(passage_terms[n - 1] for n in own))
            checked.append(SentenceSupport(sentence, own, len(terms), len(terms & pool)))
    total = sum(s.terms for s in checked)
    if total == 0:
        return None
    return DraftSupport(sum(s.terms for s in checked if s.supported) / total, tuple(checked))
