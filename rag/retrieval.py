"""Search over the corpus: immutable index snapshots, support signals, and an async retriever.

An `IndexSnapshot` is built completely (off the event loop) and then swapped in with one assignment, so a
concurrent query sees either the old index or the new one, never a half-built one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rag.analysis import Analyzer
from rag.corpus import Corpus, ScanReport
from rag.engines import BM25Engine, build_engine
from rag.types import Chunk, DocumentInfo, Passage, SearchResult, SupportSignals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSnapshot:
    """Chunks, their term sets (for coverage) and the engine that scores them. Never mutated."""

    chunks: tuple[Chunk, ...]
    term_sets: tuple[frozenset[str], ...]
    engine: BM25Engine
    generation: int = 0


def index_text(chunk: Chunk) -> str:
    """What gets indexed for a chunk: its text, led by the document title and heading path."""
    lead = [chunk.title] if chunk.title and (not chunk.heading or chunk.title not in chunk.heading) else []
    if chunk.heading:
        lead.append(chunk.heading)
    return "\n".join([*lead, chunk.text])


def build_index(
    chunks: Sequence[Chunk],
    analyzer: Analyzer,
    engine: str,
    k1: float,
    b: float,
    terms: Sequence[Sequence[str]] | None = None,
    generation: int = 0,
) -> IndexSnapshot:
    """Analyse (unless `terms` are given) and index `chunks`. CPU-bound: call it from a thread."""
    if terms is None:
        terms = [analyzer.terms(index_text(c)) for c in chunks]
    return IndexSnapshot(
        chunks=tuple(chunks),
        term_sets=tuple(frozenset(t) for t in terms),
        engine=build_engine(engine, terms, k1, b),
        generation=generation,
    )


def search_index(snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int) -> SearchResult:
    """The k best passages for `query` and the support signals. CPU-bound and pure."""
    query_terms = analyzer.query_terms(query)
    hits = snapshot.engine.top(query_terms, k) if query_terms else []
    passages = tuple(Passage(snapshot.chunks[i], score, rank) for rank, (i, score) in enumerate(hits, start=1))
    return SearchResult(query, passages, support_signals(query_terms, hits, snapshot), tuple(query_terms))


def support_signals(
    query_terms: Sequence[str], hits: Sequence[tuple[int, float]], snapshot: IndexSnapshot
) -> SupportSignals:
    """Top score, margin to the second, and the share of query terms found in the top passage."""
    if not hits:
        return SupportSignals.empty(len(query_terms))
    top_index, top_score = hits[0]
    second = hits[1][1] if len(hits) > 1 else 0.0
    present = snapshot.term_sets[top_index]
    matched = tuple(t for t in query_terms if t in present)
    weights = {t: snapshot.engine.idf(t) for t in query_terms}
    total_weight = sum(weights.values())
    return SupportSignals(
        top_score=top_score,
        second_score=second,
        margin=top_score - second,
        relative_margin=(top_score - second) / top_score if top_score > 0 else 0.0,
        coverage=len(matched) / len(query_terms) if query_terms else 0.0,
        weighted_coverage=sum(weights[t] for t in matched) / total_weight if total_weight > 0 else 0.0,
        query_terms=len(query_terms),
        matched_terms=matched,
    )


class Retriever:
    """The corpus plus its current index; refreshes from the folder before each search.

    One per app (not per chat session): sessions share the read-only snapshot, and the lock makes sure
    only one scan/rebuild runs at a time.
    """

    def __init__(self, corpus: Corpus, analyzer: Analyzer, engine: str, k1: float, b: float) -> None:
        self.corpus = corpus
        self.analyzer = analyzer
        self.engine = engine
        self._k1 = k1
        self._b = b
        self._snapshot: IndexSnapshot | None = None
        self._lock = asyncio.Lock()
        self._terms_cache: dict[tuple[str, str], list[list[str]]] = {}
        self._generation = 0

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        return self._snapshot

    def warm_up(self) -> ScanReport:
        """Scan and index synchronously (start-up and the CLI)."""
        report = self.corpus.scan()
        self._snapshot = self._rebuild()
        return report

    async def refresh(self) -> ScanReport:
        """Pick up added, edited and deleted files; rebuild and swap the index if anything changed."""
        async with self._lock:
            report = await asyncio.to_thread(self.corpus.scan)
            if report.any or self._snapshot is None:
                snapshot = await asyncio.to_thread(self._rebuild)
                self._snapshot = snapshot  # the atomic swap: one reference assignment
                if report.any:
                    log.info(
                        "index rebuilt: +%d ~%d -%d documents, %d chunks",
                        len(report.added),
                        len(report.changed),
                        len(report.removed),
                        len(snapshot.chunks),
                    )
            return report

    async def search(self, query: str, k: int) -> SearchResult:
        """Refresh, then search the current snapshot off the event loop."""
        await self.refresh()
        snapshot = self._snapshot
        assert snapshot is not None
        return await asyncio.to_thread(search_index, snapshot, self.analyzer, query, k)

    async def documents(self) -> list[DocumentInfo]:
        """The corpus listing after a refresh."""
        await self.refresh()
        return self.corpus.documents()

    def _rebuild(self) -> IndexSnapshot:
        """A new snapshot; documents whose content did not change reuse their analysed terms."""
        by_document = self.corpus.document_chunks()
        cache = {key: self._terms_cache.get(key) or [self.analyzer.terms(index_text(c)) for c in chunks]
                 for key, chunks in by_document.items()}
        self._terms_cache = cache  # drop entries of deleted or edited documents
        chunks = [c for key in by_document for c in by_document[key]]
        terms = [t for key in by_document for t in cache[key]]
        self._generation += 1
        return build_index(chunks, self.analyzer, self.engine, self._k1, self._b, terms, self._generation)
