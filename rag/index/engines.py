"""BM25 engines behind one small interface: rank-bm25 (default) and bm25s (large corpora).

Both score with the same formula, so they rank identically (tests/test_engines.py checks it):
Lucene's BM25, score = Σ idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl)) with the non-negative
idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5)). rank-bm25's own `BM25Okapi` floors negative idf at
ε·mean(idf) instead, which gives terms in most documents an arbitrary weight; we override its idf.
bm25s' "lucene" method omits the constant factor (k1+1), which we multiply back so scores match too.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from rank_bm25 import BM25Okapi

ENGINES = ("auto", "rank-bm25", "bm25s")
# RAG_ENGINE=auto: rank-bm25 (the design's default) up to this many chunks, bm25s above. Measured on
# SciFact abstracts (BENCHMARKS.md): rank-bm25's query time grows with the corpus (p50 1.5 ms at 500
# chunks, 2.8 ms at 1,000, 6.5 ms at 2,000, 14.5 ms at 4,000), bm25s stays at 0.3-0.4 ms; above 2,000 a
# question would spend more in scoring than in everything else the app does before the model.
AUTO_BM25S_ABOVE = 2000


def resolve_engine(name: str, chunks: int) -> str:
    """The engine `name` means for a corpus of `chunks` chunks ("auto" picks by size)."""
    if name == "auto":
        return "bm25s" if chunks > AUTO_BM25S_ABOVE else "rank-bm25"
    return name


class BM25Engine(Protocol):
    """Scores analysed query terms against an indexed list of analysed documents."""

    name: str

    def top(self, query_terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to k (document index, score) pairs with score > 0, best first."""
        ...

    def idf(self, term: str) -> float:
        """Lucene idf of a term; a term absent from the corpus gets the idf of df = 0 (the maximum)."""
        ...

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        """The score of every document, or None when no query term is in the corpus."""
        ...


def lucene_idf(df: int, n: int) -> float:
    """ln(1 + (N − df + 0.5) / (df + 0.5)): positive, and largest for terms no document contains."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best positive scores, best first; ties broken by document order for stable results."""
    positive = int(np.count_nonzero(scores > 0))
    k = min(k, positive)
    if k <= 0:
        return []
    if k < len(scores):
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(len(scores))
    order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
    return [(i, float(scores[i])) for i in order[:k]]


class _LuceneIdfOkapi(BM25Okapi):
    """rank-bm25's Okapi scorer with Lucene's idf (never negative, no epsilon floor)."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        self.idf = {word: lucene_idf(df, self.corpus_size) for word, df in nd.items()}


class RankBM25Engine:
    """The default engine: rank-bm25, with Lucene idf."""

    name = "rank-bm25"

    def __init__(self, documents: Sequence[Sequence[str]], k1: float, b: float) -> None:
        self._size = len(documents)
        self._empty = self._size == 0 or not any(documents)
        self._bm25 = None if self._empty else _LuceneIdfOkapi(list(documents), k1=k1, b=b)

    def top(self, query_terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to k (document index, score) pairs with score > 0, best first."""
        scores = self.scores(query_terms)
        return [] if scores is None else top_k(scores, k)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        """The score of every document (float64), or None when no query term is in the corpus."""
        if self._bm25 is None:
            return None
        known = [t for t in query_terms if t in self._bm25.idf]
        if not known:
            return None
        return np.asarray(self._bm25.get_scores(known), dtype=np.float64)

    def idf(self, term: str) -> float:
        """Lucene idf of a term; a term absent from the corpus gets the idf of df = 0 (the maximum)."""
        if self._bm25 is None:
            return lucene_idf(0, self._size)
        return self._bm25.idf.get(term) or lucene_idf(0, self._size)


class BM25sEngine:
    """bm25s: precomputed sparse scores, sub-millisecond queries on 100k chunks."""

    name = "bm25s"

    def __init__(self, documents: Sequence[Sequence[str]], k1: float, b: float) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG
        self._k1 = k1
        self._size = len(documents)
        self._empty = self._size == 0 or not any(documents)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        if not self._empty:
            # Handing bm25s (ids, vocabulary) built in one pass saves its own two passes over every
            # token (vocabulary, then ids): about a third of its indexing time.
            vocabulary = {term: i for i, term in enumerate(sorted(set().union(*documents)))}
            ids = [list(map(vocabulary.__getitem__, doc)) for doc in documents]
            self._bm25.index((ids, vocabulary), show_progress=False)

    def save(self, folder: Path) -> None:
        """Write the index to `folder` (bm25s' own format: arrays and a vocabulary, no pickles)."""
        self._bm25.save(str(folder), show_progress=False)
        (folder / "rag-engine.json").write_text(json.dumps({"k1": self._k1, "size": self._size, "empty": self._empty}))

    @classmethod
    def load(cls, folder: Path) -> BM25sEngine:
        """An engine saved by `save`, its score arrays memory-mapped (loading does not read them)."""
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        meta = json.loads((folder / "rag-engine.json").read_text())
        engine = cls.__new__(cls)
        engine._k1, engine._size, engine._empty = float(meta["k1"]), int(meta["size"]), bool(meta["empty"])
        engine._bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        return engine

    def top(self, query_terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to k (document index, score) pairs with score > 0, best first."""
        scores = self.scores(query_terms)
        return [] if scores is None else top_k(scores, k)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        """The score of every document (float64), or None when no query term is in the corpus."""
        if self._empty:
            return None
        ids = self._bm25.get_tokens_ids(list(query_terms))
        if not ids:
            return None
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float64) * (self._k1 + 1)

    def idf(self, term: str) -> float:
        """Lucene idf of a term; a term absent from the corpus gets the idf of df = 0 (the maximum)."""
        token = None if self._empty else self._bm25.vocab_dict.get(term)
        indptr = None if token is None else self._bm25.scores["indptr"]  # CSC column pointers: postings = df
        # bm25s keeps "" in its vocabulary as a padding token past the last column: no document holds it.
        if token is None or indptr is None or token + 1 >= len(indptr):
            return lucene_idf(0, self._size)
        return lucene_idf(int(indptr[token + 1] - indptr[token]), self._size)


def build_engine(name: str, documents: Sequence[Sequence[str]], k1: float, b: float) -> BM25Engine:
    """An engine by its settings name ("auto" picks by the number of documents)."""
    name = resolve_engine(name, len(documents))
    if name == "rank-bm25":
        return RankBM25Engine(documents, k1, b)
    if name == "bm25s":
        return BM25sEngine(documents, k1, b)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
