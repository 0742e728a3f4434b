"""Exact BM25 over segments: the index as built, plus documents added since, minus documents removed since.

Adding one document to a BM25 index changes every score a little: N, the idf of its terms and the
average length all move. The engines (rank-bm25, bm25s) bake those statistics into what they build, so
they can only be rebuilt, which takes seconds on a large corpus. Here each segment keeps raw postings
(which documents hold a term, how often) and the statistics are summed over the live documents of all
segments at query time, so scores are exactly those of a full rebuild (tests/test_segments.py). The
retriever answers from segments right after an upload and swaps in a rebuilt engine in the background.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.index.engines import lucene_idf, top_k


@dataclass(frozen=True)
class Postings:
    """Term-major postings of a list of analysed documents (one field)."""

    terms: dict[str, tuple[int, int]]  # term -> [start, end) in `docs` and `tfs`
    docs: np.ndarray  # int32, document numbers local to the segment
    tfs: np.ndarray  # float32, term frequencies
    lengths: np.ndarray  # float64, document lengths in terms

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> Postings:
        by_term: dict[str, tuple[list[int], list[int]]] = {}
        for number, terms in enumerate(documents):
            for term, tf in Counter(terms).items():
                entry = by_term.get(term)
                if entry is None:
                    entry = by_term[term] = ([], [])
                entry[0].append(number)
                entry[1].append(tf)
        offsets: dict[str, tuple[int, int]] = {}
        docs: list[int] = []
        tfs: list[int] = []
        for term, (numbers, counts) in by_term.items():
            offsets[term] = (len(docs), len(docs) + len(numbers))
            docs.extend(numbers)
            tfs.extend(counts)
        return cls(offsets, np.asarray(docs, dtype=np.int32), np.asarray(tfs, dtype=np.float32),
                   np.asarray([len(d) for d in documents], dtype=np.float64))

    @property
    def size(self) -> int:
        return len(self.lengths)


class SegmentedField:
    """One field (body or titles) over several segments, with documents marked deleted.

    Document numbers are global: segment i's documents follow segment i-1's. Deleted documents keep their
    numbers (so chunk positions never move) and score nothing; they leave every statistic.
    """

    def __init__(self, segments: Sequence[Postings], alive: np.ndarray, k1: float, b: float) -> None:
        self.segments = tuple(segments)
        self.offsets = np.cumsum([0, *(s.size for s in self.segments)])[:-1].tolist()
        self.alive = alive
        self.k1 = k1
        self.b = b
        lengths = np.concatenate([s.lengths for s in self.segments]) if self.segments else np.zeros(0)
        self.lengths = lengths
        self.n = int(alive.sum())
        self.avgdl = float(lengths[alive].sum() / self.n) if self.n else 0.0

    @property
    def size(self) -> int:
        return len(self.alive)

    def added(self, documents: Sequence[Sequence[str]]) -> SegmentedField:
        """This field with `documents` appended as a new segment (numbered after every existing one)."""
        alive = np.concatenate([self.alive, np.ones(len(documents), dtype=bool)])
        return SegmentedField([*self.segments, Postings.build(documents)], alive, self.k1, self.b)

    def removed(self, numbers: Sequence[int]) -> SegmentedField:
        """This field with the documents `numbers` deleted."""
        alive = self.alive.copy()
        alive[list(numbers)] = False
        return SegmentedField(self.segments, alive, self.k1, self.b)

    def _postings(self, term: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """(global document numbers, tfs) of the live documents holding `term`, per segment."""
        found = []
        for segment, offset in zip(self.segments, self.offsets):
            span = segment.terms.get(term)
            if span is None:
                continue
            docs = segment.docs[span[0]:span[1]] + offset
            tfs = segment.tfs[span[0]:span[1]]
            keep = self.alive[docs]
            if not keep.all():
                docs, tfs = docs[keep], tfs[keep]
            if len(docs):
                found.append((docs, tfs))
        return found

    def idf(self, term: str) -> float:
        df = sum(len(docs) for docs, _ in self._postings(term))
        return lucene_idf(df, self.n)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        """Lucene BM25 of every document (float64), or None when no query term is in a live document.
        Each occurrence of a term in the query counts, as in both engines."""
        if self.n == 0:
            return None
        scores = np.zeros(self.size, dtype=np.float64)
        matched = False
        cache: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for term in query_terms:
            postings = cache.get(term)
            if postings is None:
                postings = cache[term] = self._postings(term)
            if not postings:
                continue
            matched = True
            idf = lucene_idf(sum(len(d) for d, _ in postings), self.n)
            for docs, tfs in postings:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[docs] / self.avgdl)
                scores[docs] += idf * tfs * (self.k1 + 1) / (tfs + norm)
        return scores if matched else None


class SegmentedEngine:
    """A BM25Engine over a SegmentedField: what a snapshot scores with between rebuilds."""

    name = "segments"

    def __init__(self, field: SegmentedField) -> None:
        self.field = field

    def top(self, query_terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        scores = self.scores(query_terms)
        return [] if scores is None else top_k(scores, k)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        return self.field.scores(query_terms)

    def idf(self, term: str) -> float:
        return self.field.idf(term)
