"""Search over the corpus: immutable index snapshots, support signals, and an async retriever.

An `IndexSnapshot` is built completely (off the event loop) and then swapped in with one assignment, so a
concurrent query sees either the old index or the new one, never a half-built one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rag.analysis import Analyzer
from rag.corpus import Corpus, ScanReport
from rag.engines import BM25Engine, build_engine
from rag.errors import CorpusError, UnsupportedDocument
from rag.uploads import UploadLimits, UploadOutcome, content_hash, display_name, stored_name, write_atomically
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
        k1=k1,
        b=b,
    )


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
    hits = snapshot.engine.top(query_terms, k) if query_terms else []
    passages = tuple(Passage(snapshot.chunks[i], score, rank) for rank, (i, score) in enumerate(hits, start=1))
    return SearchResult(query, passages, support_signals(query_terms, hits, snapshot), tuple(query_terms))


def _search_within(
    snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int, sources: frozenset[str]
) -> SearchResult:
    chosen = [c for c in snapshot.chunks if c.source in sources]
    sub = build_index(chosen, analyzer, snapshot.engine.name, snapshot.k1, snapshot.b)
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
        return self._sync()

    async def refresh(self) -> ScanReport:
        """Pick up added, edited and deleted files; rebuild and swap the index if anything changed."""
        async with self._lock:
            return await asyncio.to_thread(self._sync)

    def _sync(self) -> ScanReport:
        """Scan the folder; rebuild and swap the index when anything changed. Call under the lock.

        Every scan goes through here, so a change a scan absorbs always reaches the index.
        """
        report = self.corpus.scan()
        if report.any or self._snapshot is None:
            self._snapshot = self._rebuild()  # the atomic swap: one reference assignment
            if report.any:
                log.info(
                    "index rebuilt: +%d ~%d -%d documents, %d chunks",
                    len(report.added),
                    len(report.changed),
                    len(report.removed),
                    len(self._snapshot.chunks),
                )
        return report

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """Refresh, then search the current snapshot (or only `sources`) off the event loop."""
        await self.refresh()
        snapshot = self._snapshot
        assert snapshot is not None
        return await asyncio.to_thread(search_index, snapshot, self.analyzer, query, k, sources)

    async def documents(self) -> list[DocumentInfo]:
        """The corpus listing after a refresh."""
        await self.refresh()
        return self.corpus.documents()

    async def add_upload(self, name: str, data: bytes, uploads_dir: Path, limits: UploadLimits) -> UploadOutcome:
        """Validate, store and index one file; return once it is searchable (or why it was refused)."""
        async with self._lock:
            return await asyncio.to_thread(self._add_upload, name, data, uploads_dir, limits)

    def _add_upload(self, name: str, data: bytes, uploads_dir: Path, limits: UploadLimits) -> UploadOutcome:
        shown = display_name(name)
        if len(data) > limits.max_file_bytes:
            return UploadOutcome(shown, "rejected", reason=f"file is {len(data) / 2**20:.1f} MB, over the limit of "
                                 f"{limits.max_file_bytes / 2**20:.0f} MB (RAG_MAX_FILE_MB)", size_bytes=len(data))
        self._sync()  # current state, so duplicates and the size budget are judged correctly
        digest = content_hash(data)
        existing = self.corpus.find_by_hash(digest)
        if existing is not None:
            return UploadOutcome(shown, "duplicate", source=existing, reason=f"already in the corpus as {existing}",
                                 size_bytes=len(data))
        if self.corpus.total_bytes() + len(data) > limits.max_corpus_bytes:
            return UploadOutcome(shown, "rejected", reason=f"the corpus would exceed {limits.max_corpus_bytes / 2**20:.0f} MB "
                                 "(RAG_MAX_CORPUS_MB)", size_bytes=len(data))
        started = time.perf_counter()
        try:
            target_name = stored_name(name, digest)
            source = (uploads_dir / target_name).relative_to(self.corpus.root).as_posix()
            info, chunks = self.corpus.parse_upload(source, data)
        except UnsupportedDocument as exc:
            return UploadOutcome(shown, "rejected", reason=exc.reason, size_bytes=len(data))
        parse_ms = (time.perf_counter() - started) * 1000
        path = write_atomically(uploads_dir, target_name, data)
        self.corpus.adopt(path, info, chunks)
        started = time.perf_counter()
        self._snapshot = self._rebuild()
        index_ms = (time.perf_counter() - started) * 1000
        return UploadOutcome(shown, "added", source, None, info.pages, len(chunks), len(data), parse_ms, index_ms)

    async def remove_document(self, source: str, uploads_dir: Path) -> None:
        """Delete an uploaded document's file and its chunks; only files under `uploads_dir` may go."""
        async with self._lock:
            await asyncio.to_thread(self._remove_document, source, uploads_dir)

    def _remove_document(self, source: str, uploads_dir: Path) -> None:
        path = (self.corpus.root / source).resolve()
        allowed = uploads_dir.resolve()
        if allowed not in path.parents or source.startswith("/") or ".." in PurePosixPath(source).parts:
            raise CorpusError(f"{source} is not an uploaded document; only uploads can be deleted here")
        if not path.is_file():
            raise CorpusError(f"{source} does not exist")
        path.unlink()
        self.corpus.forget(source)
        self._snapshot = self._rebuild()

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
