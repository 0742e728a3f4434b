"""The retriever: keeps the index in step with the document library, the async face of both."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from rag.documents.corpus import DocumentKey, ScanReport
from rag.errors import SearchUnavailable
from rag.documents.library import DocumentLibrary, PreparedUpload, UploadOutcome
from rag.index.analysis import Analyzer
from rag.index.index import Index, SearchIndex
from rag.index.persistence import DocumentStore, EngineStore, StoredDocument
from rag.index.search import IndexSnapshot
from rag.types import Chunk, DocumentInfo, SearchResult


log = logging.getLogger(__name__)


class Retriever:
    """Keeps the index in step with the document library; the async face of both.

    One per app (not per chat session): sessions share the read-only snapshot, and the lock makes sure
    only one change is applied at a time. A question never walks the folder: it stats one file to learn
    whether another process changed the corpus (rag.documents.library), and otherwise searches what is indexed;
    the watcher (rag.documents.watching) refreshes in the background. A change is applied incrementally, with exact
    scores (rag.index.segments), and the engine is rebuilt in the background afterwards.
    """

    def __init__(self, library: DocumentLibrary, index: SearchIndex, analyzer: Analyzer,
                 store: DocumentStore | None = None) -> None:
        self.library = library
        self.index = index
        self.analyzer = analyzer
        self.store = store
        # One engine store, so what it says once (a folder it cannot write) is said once.
        self._engines = EngineStore(store.path.parent) if store is not None else None
        self._lock = asyncio.Lock()
        self._merging: asyncio.Task[None] | None = None
        self._saving = threading.Lock()

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        return self.index.snapshot

    def load_store(self) -> int:
        """Start from the store in the data folder, if it can be trusted; returns the documents loaded."""
        if self.store is None:
            return 0
        stored = self.store.load()
        self.analyzer.seen = self.analyzer.seen | self.store.languages
        self.library.preload({s: (d.mtime_ns, d.size, d.info, d.chunks) for s, d in stored.items()})
        self.index.preload_terms({(s, d.info.content_hash): d.terms for s, d in stored.items() if d.chunks})
        return len(stored)

    def save_store(self) -> None:
        """Write the store (documents, chunks, analysed terms); CPU- and disk-bound: call it from a thread."""
        if self.store is None:
            return
        with self._saving:
            kept = self.library.kept()
            terms = self.index.terms_cache
            documents = {}
            for source, (mtime_ns, size, info, chunks) in kept.items():
                cached = terms.get((source, info.content_hash)) if chunks else []
                if cached is None:
                    continue  # not analysed yet: the next save keeps it
                documents[source] = StoredDocument(mtime_ns, size, info, chunks, tuple(tuple(t) for t in cached))
            self.store.save(documents, frozenset(self.analyzer.seen))

    def warm_up(self) -> ScanReport:
        """Load the store, scan and index synchronously (start-up and the CLI); save the store if it changed.

        With bm25s, the engines saved for exactly these documents are memory-mapped instead of rebuilt."""
        loaded = self.load_store()
        report = self.library.scan()
        documents = self.library.document_chunks()
        engines = self._engines
        key = self.index.engine_key(documents)
        saved = engines.load(key) if engines is not None and key is not None else None
        if saved is not None and isinstance(self.index, Index):
            self.index.install_engines(documents, *saved)
        else:
            self._save_engines(documents, self.index.rebuild(documents))
        if report.any or loaded == 0:
            self.save_store()
        return report

    async def refresh(self) -> ScanReport:
        """Walk the folder for added, edited and deleted files and apply them (the watcher calls this)."""
        async with self._lock:
            report = await asyncio.to_thread(self._apply, self.library.scan)
        self._after(report)
        return report

    async def catch_up(self) -> ScanReport:
        """Apply what other processes recorded changing, without a walk."""
        async with self._lock:
            report = await asyncio.to_thread(self._apply, self.library.catch_up)
        self._after(report)
        return report

    def _apply(self, change: Callable[[], ScanReport]) -> ScanReport:
        """Run a library change and bring the index in line with it. Call under the lock, in a thread."""
        before = set(self.library.document_chunks())
        report = change()
        if self._follow(before):
            log.info("index updated: +%d ~%d -%d documents", len(report.added), len(report.changed), len(report.removed))
        return report

    def _follow(self, before: set[DocumentKey]) -> bool:
        """Bring the index in line with the library, which held the documents `before` when the index last
        matched it: incrementally, or whole the first time. True when the index changed."""
        documents = self.library.document_chunks()
        if not self.index.ready:
            self.index.rebuild(documents)
            return True
        added = {key: chunks for key, chunks in documents.items() if key not in before}
        removed = {source for source, _ in before - set(documents)}
        if added or removed:
            self.index.update(added, removed)
        return bool(added or removed)

    def _after(self, report: ScanReport) -> None:
        """After a change: rebuild the engine in the background, and keep the store current."""
        if self.index.segmented and (self._merging is None or self._merging.done()):
            self._merging = asyncio.get_running_loop().create_task(self._merge())
        elif report.any:
            asyncio.get_running_loop().run_in_executor(None, self.save_store)

    async def _merge(self) -> None:
        """Rebuild the engine over everything, off the lock, and install it unless the index moved on."""
        while True:
            while isinstance(self.index, Index) and self.index.segmented:
                generation = self.index.generation
                documents = self.library.document_chunks()
                snapshot = await asyncio.to_thread(self.index.build, documents)
                async with self._lock:
                    installed = self.index.install(snapshot, generation)
                if installed:
                    log.info("index merged: %d chunks, %s", len(snapshot.chunks), snapshot.engine.name)
                    await asyncio.to_thread(self._save_engines, documents, snapshot)
                    await asyncio.to_thread(self.index.prepare_updates)
            await asyncio.to_thread(self.save_store)
            # A change that landed while the store was written saw this merge still running and started
            # none of its own: merge it here, or it would score from segments until the next change.
            if not (isinstance(self.index, Index) and self.index.segmented):
                return

    def _save_engines(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]], snapshot: object) -> None:
        """Keep the engines of this set of documents for the next start (bm25s only)."""
        key = self.index.engine_key(documents)
        if (self._engines is not None and key is not None and isinstance(snapshot, IndexSnapshot)
                and snapshot.titles is not None):
            self._engines.save(key, snapshot.engine, snapshot.titles)

    async def settled(self) -> None:
        """Wait for a background merge (tests and benchmarks)."""
        while self._merging is not None and not self._merging.done():
            await asyncio.shield(self._merging)

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """Search the current snapshot (or only `sources`) off the event loop; first catch up with what
        another process changed, if anything (one stat)."""
        await self._current()
        return await asyncio.to_thread(self.index.search, query, k, sources, earlier)

    async def documents(self) -> list[DocumentInfo]:
        """The corpus listing, current with other processes' changes."""
        await self._current()
        return self.library.documents()

    async def _current(self) -> None:
        if not self.index.ready:  # never indexed (start-up failed, the search server was down): sync first
            await self.refresh()
        elif self.library.news():
            await self.catch_up()

    async def add_upload(self, name: str, data: bytes) -> UploadOutcome:
        """Validate, store and index one file; return once it is searchable (or why it was refused)."""
        prepared = await asyncio.to_thread(self.library.prepare, name, data)
        if isinstance(prepared, UploadOutcome):
            return prepared
        async with self._lock:
            outcome = await asyncio.to_thread(self._commit, prepared)
        self._after(ScanReport(added=(outcome.source or "",)))
        return outcome

    def _commit(self, prepared: PreparedUpload) -> UploadOutcome:
        before = set(self.library.document_chunks())
        outcome = self.library.commit(prepared)
        # Whatever the outcome, the commit caught up with other processes' changes: they reach the index too.
        started = time.perf_counter()
        try:
            self._follow(before)
        except SearchUnavailable as exc:  # the file is stored: it is indexed when the search server is back
            log.warning("upload %s stored, not indexed yet: %s", outcome.source, exc)
            return replace(outcome, pending=str(exc))
        if outcome.status != "added":
            return outcome
        return replace(outcome, index_ms=(time.perf_counter() - started) * 1000)

    async def remove_document(self, source: str) -> None:
        """Delete an uploaded document's file and its chunks."""
        async with self._lock:
            await asyncio.to_thread(self._remove, source)
        self._after(ScanReport(removed=(source,)))

    def _remove(self, source: str) -> None:
        before = set(self.library.document_chunks())
        self.library.remove(source)
        try:
            self._follow(before)
        except SearchUnavailable as exc:  # the file is gone: the reconciliation on return removes its chunks
            log.warning("%s deleted, its chunks stay in the index until search is back: %s", source, exc)
