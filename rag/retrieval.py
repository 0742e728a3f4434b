"""The index: immutable BM25 snapshots, search and support signals; and the retriever that keeps it in step
with the document library (`rag.library`).

An `IndexSnapshot` is built completely (off the event loop) and then swapped in with one assignment, so a
concurrent query sees either the old index or the new one, never a half-built one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Protocol

from rag.analysis import Analyzer
from rag.corpus import DocumentKey, ScanReport
from rag.engines import BM25Engine, build_engine, top_k
from rag.library import DocumentLibrary, PreparedUpload, UploadOutcome
from rag.types import Chunk, DocumentInfo, Passage, SearchResult, SupportSignals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSnapshot:
    """Chunks, their term sets (for coverage) and the engine that scores them. Never mutated."""

    chunks: tuple[Chunk, ...]
    term_sets: tuple[frozenset[str], ...]
    engine: BM25Engine
    generation: int = 0
    k1: float = 1.2
    b: float = 0.75
    titles: BM25Engine | None = None  # the title field: document title, heading path, file name
    title_weight: float = 0.0


def index_text(chunk: Chunk) -> str:
    """What gets indexed for a chunk: its text, led by the document title and heading path."""
    lead = [chunk.title] if chunk.title and (not chunk.heading or chunk.title not in chunk.heading) else []
    if chunk.heading:
        lead.append(chunk.heading)
    return "\n".join([*lead, chunk.text])


def title_text(chunk: Chunk) -> str:
    """The title field of a chunk: what its document and section are called, and the file's name.

    Scored as a field of its own (BM25F-like): a question naming a topic ("...on Ollama?") finds the
    document *about* it, not the one that mentions it most often in passing.
    """
    name = PurePosixPath(chunk.source).stem.replace("-", " ").replace("_", " ")
    return "\n".join(part for part in (chunk.title, chunk.heading or "", name) if part)


def build_index(
    chunks: Sequence[Chunk],
    analyzer: Analyzer,
    engine: str,
    k1: float,
    b: float,
    terms: Sequence[Sequence[str]] | None = None,
    generation: int = 0,
    title_weight: float = 0.0,
) -> IndexSnapshot:
    """Analyse (unless `terms` are given) and index `chunks`. CPU-bound: call it from a thread."""
    if terms is None:
        terms = [analyzer.terms(index_text(c)) for c in chunks]
    titles = None
    if title_weight > 0:
        # Always bm25s: the same scores as rank-bm25 (a parity test), at a fraction of the cost; with
        # rank-bm25 a second full scoring pass doubled the query time (BENCHMARKS.md).
        titles = build_engine("bm25s", [analyzer.terms(title_text(c)) for c in chunks], k1, TITLE_B)
    return IndexSnapshot(
        chunks=tuple(chunks),
        term_sets=tuple(frozenset(t) for t in terms),
        engine=build_engine(engine, terms, k1, b),
        generation=generation,
        k1=k1,
        b=b,
        titles=titles,
        title_weight=title_weight,
    )


# Titles are short and similar in length: length normalisation would only add noise.
TITLE_B = 0.0


def search_index(
    snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int, sources: frozenset[str] | None = None
) -> SearchResult:
    """The k best passages for `query` and the support signals. CPU-bound and pure.

    With `sources`, only those documents are searched (the user pointed at them, e.g. by attaching them);
    if the query matches fewer than k of their chunks, the rest are filled in reading order, so "summarize
    the file I attached" still gets the file's opening passages.
    """
    if sources is not None:
        return _search_within(snapshot, analyzer, query, k, sources)
    query_terms = analyzer.query_terms(query)
    hits = _top(snapshot, query_terms, k) if query_terms else []
    passages = tuple(Passage(snapshot.chunks[i], score, rank) for rank, (i, score) in enumerate(hits, start=1))
    return SearchResult(query, passages, support_signals(query_terms, hits, snapshot), tuple(query_terms))


def _top(snapshot: IndexSnapshot, query_terms: Sequence[str], k: int) -> list[tuple[int, float]]:
    """The k best chunks: body BM25, plus the title field's BM25 times its weight."""
    if snapshot.titles is None:
        return snapshot.engine.top(query_terms, k)
    body = snapshot.engine.scores(query_terms)
    if body is None:  # no query term in any chunk's text: a title alone does not make a passage relevant
        return []
    titles = snapshot.titles.scores(query_terms)
    return top_k(body if titles is None else body + snapshot.title_weight * titles, k)


def _search_within(
    snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int, sources: frozenset[str]
) -> SearchResult:
    chosen = [c for c in snapshot.chunks if c.source in sources]
    sub = build_index(chosen, analyzer, snapshot.engine.name, snapshot.k1, snapshot.b, title_weight=snapshot.title_weight)
    result = search_index(sub, analyzer, query, k)
    passages = list(result.passages)
    seen = {(p.chunk.source, p.chunk.index) for p in passages}
    for chunk in chosen:
        if len(passages) >= k:
            break
        if (chunk.source, chunk.index) not in seen:
            passages.append(Passage(chunk, 0.0, len(passages) + 1))
    return SearchResult(query, tuple(passages), result.signals, result.analysed_terms)


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


class SearchIndex(Protocol):
    """What the retriever needs of an index: rebuild it from the library's chunks, search it."""

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        ...

    def rebuild(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> IndexSnapshot:
        """Index these documents and swap the result in. CPU-bound: call it from a thread."""
        ...

    def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """The k best passages in the current snapshot. CPU-bound: call it from a thread."""
        ...

    def context(self, chunk: Chunk, limit: int = 1500) -> tuple[str, str]:
        """The document's text just before and just after a chunk."""
        ...


class Index:
    """BM25 over the library's chunks: immutable snapshots, swapped whole; analysed terms cached per document."""

    def __init__(self, analyzer: Analyzer, engine: str, k1: float, b: float, title_weight: float = 0.0) -> None:
        self.analyzer = analyzer
        self.engine = engine
        self._k1 = k1
        self._b = b
        self._title_weight = title_weight
        self._snapshot: IndexSnapshot | None = None
        self._terms_cache: dict[DocumentKey, list[list[str]]] = {}
        self._generation = 0
        self._positions: dict[tuple[str, int], Chunk] = {}  # (source, chunk index) -> chunk, for context

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        return self._snapshot

    def rebuild(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> IndexSnapshot:
        """A new snapshot, swapped in with one assignment; unchanged documents reuse their analysed terms."""
        cache = {key: self._terms_cache.get(key) or [self.analyzer.terms(index_text(c)) for c in chunks]
                 for key, chunks in documents.items()}
        self._terms_cache = cache  # drop entries of deleted or edited documents
        chunks = [c for key in documents for c in documents[key]]
        terms = [t for key in documents for t in cache[key]]
        self._generation += 1
        self._snapshot = build_index(chunks, self.analyzer, self.engine, self._k1, self._b, terms, self._generation,
                                     self._title_weight)
        self._positions = {(c.source, c.index): c for c in chunks}
        return self._snapshot

    def context(self, chunk: Chunk, limit: int = 1500) -> tuple[str, str]:
        """The document's text just before and just after `chunk` (up to `limit` characters each), from
        its neighbouring chunks, without the overlap they share with it."""
        before = self._positions.get((chunk.source, chunk.index - 1))
        after = self._positions.get((chunk.source, chunk.index + 1))
        text_before = before.text[: max(0, chunk.start - before.start)] if before else ""
        text_after = after.text[max(0, chunk.end - after.start):] if after else ""
        return text_before[-limit:], text_after[:limit]

    def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """The k best passages in the current snapshot (an empty result before the first build)."""
        snapshot = self._snapshot
        if snapshot is None:
            return SearchResult(query, (), SupportSignals.empty(len(self.analyzer.query_terms(query))))
        return search_index(snapshot, self.analyzer, query, k, sources)


class Retriever:
    """Keeps the index in step with the document library; the async face of both.

    One per app (not per chat session): sessions share the read-only snapshot, and the lock makes sure
    only one scan/rebuild runs at a time. Parsing a new upload happens outside the lock, so queries are
    never held up by it.
    """

    def __init__(self, library: DocumentLibrary, index: SearchIndex, analyzer: Analyzer) -> None:
        self.library = library
        self.index = index
        self.analyzer = analyzer
        self._lock = asyncio.Lock()

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        return self.index.snapshot

    def warm_up(self) -> ScanReport:
        """Scan and index synchronously (start-up and the CLI)."""
        return self._sync()

    async def refresh(self) -> ScanReport:
        """Pick up added, edited and deleted files; rebuild and swap the index if anything changed."""
        async with self._lock:
            return await asyncio.to_thread(self._sync)

    def _sync(self) -> ScanReport:
        """Scan the folder; rebuild the index when anything changed. Call under the lock.

        Every scan goes through here, so a change a scan absorbs always reaches the index.
        """
        report = self.library.scan()
        if report.any or self.index.snapshot is None:
            snapshot = self.index.rebuild(self.library.document_chunks())
            if report.any:
                log.info("index rebuilt: +%d ~%d -%d documents, %d chunks", len(report.added),
                         len(report.changed), len(report.removed), len(snapshot.chunks))
        return report

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """Refresh, then search the current snapshot (or only `sources`) off the event loop."""
        await self.refresh()
        return await asyncio.to_thread(self.index.search, query, k, sources)

    async def documents(self) -> list[DocumentInfo]:
        """The corpus listing after a refresh."""
        await self.refresh()
        return self.library.documents()

    async def add_upload(self, name: str, data: bytes) -> UploadOutcome:
        """Validate, store and index one file; return once it is searchable (or why it was refused)."""
        prepared = await asyncio.to_thread(self.library.prepare, name, data)
        if isinstance(prepared, UploadOutcome):
            return prepared
        async with self._lock:
            return await asyncio.to_thread(self._commit, prepared)

    def _commit(self, prepared: PreparedUpload) -> UploadOutcome:
        outcome = self.library.commit(prepared)
        if outcome.status != "added":
            return outcome
        started = time.perf_counter()
        self.index.rebuild(self.library.document_chunks())
        return replace(outcome, index_ms=(time.perf_counter() - started) * 1000)

    async def remove_document(self, source: str) -> None:
        """Delete an uploaded document's file and its chunks."""
        async with self._lock:
            await asyncio.to_thread(self._remove, source)

    def _remove(self, source: str) -> None:
        self.library.remove(source)
        self.index.rebuild(self.library.document_chunks())
