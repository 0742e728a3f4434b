"""The index: immutable BM25 snapshots, search and support signals; and the retriever that keeps it in step
with the document library (`rag.library`).

An `IndexSnapshot` is built completely (off the event loop) and then swapped in with one assignment, so a
concurrent query sees either the old index or the new one, never a half-built one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Protocol

import numpy as np

from rag.analysis import Analyzer
from rag.corpus import DocumentKey, ScanReport
from rag.engines import ENGINES, BM25Engine, build_engine, resolve_engine, top_k
from rag.segments import Postings, SegmentedEngine, SegmentedField
from rag.support import SIGNAL_DEPTH, SupportModel, predictors, shipped_model
from rag.store import DocumentStore, EngineStore, StoredDocument
from rag.library import DocumentLibrary, PreparedUpload, UploadOutcome
from rag.types import Chunk, DocumentInfo, Passage, SearchResult, SupportSignals

log = logging.getLogger(__name__)


class TermSets:
    """The set of analysed terms of each chunk, made when asked for: only the top passage's is needed
    (for coverage), and making all of them cost a large corpus's start a fifth of a second."""

    def __init__(self, terms: Sequence[Sequence[str]]) -> None:
        self.terms = terms

    def __len__(self) -> int:
        return len(self.terms)

    def __getitem__(self, number: int) -> frozenset[str]:
        return frozenset(self.terms[number])

    def extended(self, more: Sequence[Sequence[str]]) -> TermSets:
        return TermSets([*self.terms, *more])


@dataclass(frozen=True)
class IndexSnapshot:
    """Chunks, their term sets (for coverage) and the engine that scores them. Never mutated."""

    chunks: tuple[Chunk, ...]
    term_sets: TermSets
    engine: BM25Engine
    generation: int = 0
    k1: float = 1.2
    b: float = 0.75
    titles: BM25Engine | None = None  # the title field: document title, heading path, file name
    title_weight: float = 0.0
    live: np.ndarray | None = None  # after removals by segments: False for chunks of removed documents


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
        term_sets=TermSets(terms),
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
    snapshot: IndexSnapshot,
    analyzer: Analyzer,
    query: str,
    k: int,
    sources: frozenset[str] | None = None,
    model: SupportModel | None = None,
) -> SearchResult:
    """The k best passages for `query` and the support signals. CPU-bound and pure.

    With `sources`, only those documents are searched (the user pointed at them, e.g. by attaching them);
    if the query matches fewer than k of their chunks, the rest are filled in reading order, so "summarize
    the file I attached" still gets the file's opening passages.
    """
    if sources is not None:
        return _search_within(snapshot, analyzer, query, k, sources, model)
    groups = analyzer.query_groups(query)
    query_terms = list(dict.fromkeys(t for group in groups for t in group))
    # The support predictors read the distribution of the best SIGNAL_DEPTH scores, not just the k shown.
    hits = _top(snapshot, query_terms, max(k, SIGNAL_DEPTH)) if query_terms else []
    passages = tuple(Passage(snapshot.chunks[i], score, rank) for rank, (i, score) in enumerate(hits[:k], start=1))
    signals = support_signals(groups, hits, snapshot, model or shipped_model())
    return SearchResult(query, passages, signals, tuple(query_terms))


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
    snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int, sources: frozenset[str],
    model: SupportModel | None,
) -> SearchResult:
    chosen = [c for i, c in enumerate(snapshot.chunks)
              if c.source in sources and (snapshot.live is None or snapshot.live[i])]
    engine = snapshot.engine.name if snapshot.engine.name in ENGINES else "auto"  # a segmented snapshot
    sub = build_index(chosen, analyzer, engine, snapshot.k1, snapshot.b, title_weight=snapshot.title_weight)
    result = search_index(sub, analyzer, query, k, model=model)
    passages = list(result.passages)
    seen = {(p.chunk.source, p.chunk.index) for p in passages}
    for chunk in chosen:
        if len(passages) >= k:
            break
        if (chunk.source, chunk.index) not in seen:
            passages.append(Passage(chunk, 0.0, len(passages) + 1))
    return SearchResult(query, tuple(passages), result.signals, result.analysed_terms)


def support_signals(
    groups: Sequence[Sequence[str]], hits: Sequence[tuple[int, float]], snapshot: IndexSnapshot, model: SupportModel
) -> SupportSignals:
    """Top score, margin to the second, the share of the question's words found in the top passage, the
    support predictors over the best scores (`hits`, best first) and `support` from `model`.

    `groups`: the question's words, each as its terms (rag.analysis.Analyzer.query_groups); a word counts
    as found when any of its terms is, weighted by its rarest term's idf.
    """
    if not hits:
        return SupportSignals.empty(len(groups))
    top_index, top_score = hits[0]
    second = hits[1][1] if len(hits) > 1 else 0.0
    present = snapshot.term_sets[top_index]
    terms = list(dict.fromkeys(t for group in groups for t in group))
    idf = {t: snapshot.engine.idf(t) for t in terms}
    unseen = snapshot.engine.idf("")  # "" is never a term: the idf of a term no document holds
    weights = [max(idf[t] for t in group) for group in groups]
    total_weight = sum(weights)
    found = [any(t in present for t in group) for group in groups]
    known = sum(w for w, group in zip(weights, groups) if any(idf[t] < unseen - 1e-9 for t in group))
    # Every term at saturation (tf -> inf gives tf·(k1+1)/(tf+norm) -> k1+1), in both fields.
    max_score = (snapshot.k1 + 1) * sum(idf.values())
    if snapshot.titles is not None and snapshot.title_weight > 0:
        max_score += snapshot.title_weight * (snapshot.k1 + 1) * sum(snapshot.titles.idf(t) for t in terms)
    coverage = sum(found) / len(groups) if groups else 0.0
    weighted = sum(w for w, f in zip(weights, found) if f) / total_weight if total_weight > 0 else 0.0
    # Typicality reads each word in the form the corpus has most (a word's other-language or prefix forms
    # are often rarer or absent).
    common = [min(idf[t] for t in group) for group in groups]
    typicality = 1 - sum(common) / len(common) / unseen if common and unseen > 0 else 0.0
    values = predictors([s for _, s in hits], max_score, coverage, weighted,
                        known / total_weight if total_weight > 0 else 0.0, len(groups), typicality)
    return SupportSignals(
        top_score=top_score,
        second_score=second,
        margin=top_score - second,
        relative_margin=(top_score - second) / top_score if top_score > 0 else 0.0,
        coverage=coverage,
        weighted_coverage=weighted,
        query_terms=len(groups),
        matched_terms=tuple(group[0] for group, f in zip(groups, found) if f),
        support=model.predict(values),
        max_score=max_score,
        normalized_top=values["normalized_top"],
        nqc=values["nqc"],
        wig=values["wig"],
        skew=values["skew"],
        known_share=values["known_share"],
        typicality=values["typicality"],
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

    def __init__(
        self,
        analyzer: Analyzer,
        engine: str,
        k1: float,
        b: float,
        title_weight: float = 0.0,
        support_model: SupportModel | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.support_model = support_model  # None: the shipped coefficients
        self.engine = engine
        self._k1 = k1
        self._b = b
        self._title_weight = title_weight
        self._snapshot: IndexSnapshot | None = None
        self._terms_cache: dict[DocumentKey, Sequence[Sequence[str]]] = {}
        self._generation = 0
        self._positions: dict[tuple[str, int], Chunk] = {}  # (source, chunk index) -> chunk, for context
        # Raw postings of the current snapshot's chunks (body and titles), for exact incremental updates.
        self._fields: tuple[SegmentedField, SegmentedField] | None = None
        self._fields_generation = -1
        self._numbers: dict[str, list[int]] = {}  # source -> chunk numbers in the snapshot

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The index queries currently use."""
        return self._snapshot

    def preload_terms(self, terms: Mapping[DocumentKey, Sequence[Sequence[str]]]) -> None:
        """Analysed terms kept by a store: documents with these keys are not analysed again."""
        self._terms_cache = {**terms, **self._terms_cache}

    @property
    def terms_cache(self) -> Mapping[DocumentKey, Sequence[Sequence[str]]]:
        return self._terms_cache

    def _terms(self, key: DocumentKey, chunks: Sequence[Chunk]) -> Sequence[Sequence[str]]:
        return self._terms_cache.get(key) or [self.analyzer.terms(index_text(c)) for c in chunks]

    def rebuild(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> IndexSnapshot:
        """A new snapshot, swapped in with one assignment; unchanged documents reuse their analysed terms."""
        chunks, terms, self._terms_cache = self._collect(documents)  # drops deleted or edited documents' terms
        return self._install_fresh(build_index(chunks, self.analyzer, resolve_engine(self.engine, len(chunks)),
                                               self._k1, self._b, terms, 0, self._title_weight))

    def _collect(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> tuple[
            list[Chunk], list[Sequence[str]], dict[DocumentKey, Sequence[Sequence[str]]]]:
        """The chunks of `documents` in order, their analysed terms (cached ones reused), and the cache
        restricted to `documents`."""
        cache = {key: self._terms(key, chunks) for key, chunks in documents.items()}
        return [c for key in documents for c in documents[key]], [t for key in documents for t in cache[key]], cache

    def _install_fresh(self, snapshot: IndexSnapshot) -> IndexSnapshot:
        """Swap in a snapshot of everything (not from segments), numbered as the next generation."""
        self._generation += 1
        installed = replace(snapshot, generation=self._generation)
        self._swap(installed)
        self._fields = None  # built again, from this snapshot, when the next update needs them
        return installed

    @property
    def generation(self) -> int:
        return self._generation

    def engine_key(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> str | None:
        """What saved engines for `documents` are filed under; None when they are not worth saving
        (rank-bm25 is chosen for small corpora only, and rebuilds in well under a second)."""
        if resolve_engine(self.engine, sum(len(c) for c in documents.values())) != "bm25s" or self._title_weight <= 0:
            return None
        return EngineStore.key(list(documents), k1=self._k1, b=self._b, title_b=TITLE_B, chunks=sum(len(c) for c in documents.values()))

    def install_engines(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]], body: BM25Engine, titles: BM25Engine) -> IndexSnapshot:
        """A snapshot of `documents` scored by engines loaded from disk (terms from the store)."""
        chunks, terms, self._terms_cache = self._collect(documents)
        return self._install_fresh(IndexSnapshot(tuple(chunks), TermSets(terms), body, 0, self._k1, self._b, titles,
                                                 self._title_weight))

    def build(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> IndexSnapshot:
        """A full snapshot of `documents`, not installed: the background merge builds it outside the
        retriever's lock and installs it with `install`. CPU-bound: call it from a thread."""
        chunks, terms, _ = self._collect(documents)
        return build_index(chunks, self.analyzer, resolve_engine(self.engine, len(chunks)), self._k1, self._b, terms,
                           0, self._title_weight)

    def install(self, snapshot: IndexSnapshot, generation: int) -> bool:
        """Swap in a snapshot built by `build` at `generation`, unless the index changed since."""
        if generation != self._generation:
            return False
        self._install_fresh(snapshot)
        return True

    def _swap(self, snapshot: IndexSnapshot) -> None:
        numbers: dict[str, list[int]] = {}
        for number, chunk in enumerate(snapshot.chunks):
            if snapshot.live is None or snapshot.live[number]:
                numbers.setdefault(chunk.source, []).append(number)
        self._snapshot = snapshot
        self._numbers = numbers
        self._positions = {(c.source, c.index): c for i, c in enumerate(snapshot.chunks)
                           if snapshot.live is None or snapshot.live[i]}

    def prepare_updates(self) -> None:
        """Build the raw postings that exact incremental updates start from (CPU-bound: a thread).
        Done in the background after a rebuild, so the next upload does not wait for it."""
        snapshot = self._snapshot
        if snapshot is None or (self._fields is not None and self._fields_generation == snapshot.generation):
            return
        by_source = {key[0]: terms for key, terms in self._terms_cache.items()}

        def chunk_terms(chunk: Chunk) -> Sequence[str]:
            terms = by_source.get(chunk.source)
            return terms[chunk.index] if terms is not None and chunk.index < len(terms) else self.analyzer.terms(index_text(chunk))

        body_terms = [chunk_terms(c) for c in snapshot.chunks]
        title_terms = [self.analyzer.terms(title_text(c)) for c in snapshot.chunks]
        live = np.ones(len(snapshot.chunks), dtype=bool) if snapshot.live is None else snapshot.live
        fields = (SegmentedField([Postings.build(body_terms)], live, self._k1, self._b),
                  SegmentedField([Postings.build(title_terms)], live, self._k1, TITLE_B))
        if self._snapshot is snapshot:
            self._fields, self._fields_generation = fields, snapshot.generation

    def update(self, added: Mapping[DocumentKey, tuple[Chunk, ...]], removed: Iterable[str]) -> IndexSnapshot:
        """The snapshot with documents added and removed, scored exactly as a rebuild would score them,
        without rebuilding: new documents become a segment, removed ones are masked out, and the
        statistics (N, df, average length) are summed over what is live (rag.segments). Call `rebuild`
        later, in the background, to get the engine's speed back."""
        snapshot = self._snapshot
        if snapshot is None:
            return self.rebuild(added)
        self.prepare_updates()
        assert self._fields is not None
        body, titles = self._fields
        gone = sorted(n for source in set(removed) for n in self._numbers.get(source, ()))
        new_chunks = [c for key in added for c in added[key]]
        new_terms = [t for key in added for t in self._terms(key, added[key])]
        gone_sources = set(removed)
        self._terms_cache = {**{k: v for k, v in self._terms_cache.items() if k[0] not in gone_sources},
                             **{key: self._terms(key, added[key]) for key in added}}
        if gone:
            body, titles = body.removed(gone), titles.removed(gone)
        if new_chunks:
            body = body.added(new_terms)
            titles = titles.added([self.analyzer.terms(title_text(c)) for c in new_chunks])
        self._generation += 1
        updated = IndexSnapshot(
            chunks=snapshot.chunks + tuple(new_chunks),
            term_sets=snapshot.term_sets.extended(new_terms),
            engine=SegmentedEngine(body), generation=self._generation, k1=self._k1, b=self._b,
            titles=SegmentedEngine(titles) if self._title_weight > 0 else None, title_weight=self._title_weight,
            live=body.alive)
        self._fields, self._fields_generation = (body, titles), updated.generation
        self._swap(updated)
        return updated

    @property
    def segmented(self) -> bool:
        """True while the snapshot scores from segments (after an update, until the next rebuild)."""
        return self._snapshot is not None and self._snapshot.live is not None

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
            return SearchResult(query, (), SupportSignals.empty(len(self.analyzer.query_groups(query))))
        return search_index(snapshot, self.analyzer, query, k, sources, self.support_model)


class Retriever:
    """Keeps the index in step with the document library; the async face of both.

    One per app (not per chat session): sessions share the read-only snapshot, and the lock makes sure
    only one change is applied at a time. A question never walks the folder: it stats one file to learn
    whether another process changed the corpus (rag.library), and otherwise searches what is indexed;
    the watcher (rag.watching) refreshes in the background. A change is applied incrementally, with exact
    scores (rag.segments), and the engine is rebuilt in the background afterwards.
    """

    def __init__(self, library: DocumentLibrary, index: Index, analyzer: Analyzer, store: DocumentStore | None = None) -> None:
        self.library = library
        self.index = index
        self.analyzer = analyzer
        self.store = store
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
        engines = EngineStore(self.store.path.parent) if self.store is not None else None
        key = self.index.engine_key(documents)
        saved = engines.load(key) if engines is not None and key is not None else None
        if saved is not None:
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
        if self.index.snapshot is None:
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
        while self.index.segmented:
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

    def _save_engines(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]], snapshot: IndexSnapshot) -> None:
        """Keep the engines of this set of documents for the next start (bm25s only)."""
        key = self.index.engine_key(documents)
        if self.store is not None and key is not None and snapshot.titles is not None:
            EngineStore(self.store.path.parent).save(key, snapshot.engine, snapshot.titles)

    async def settled(self) -> None:
        """Wait for a background merge (tests and benchmarks)."""
        while self._merging is not None and not self._merging.done():
            await asyncio.shield(self._merging)

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """Search the current snapshot (or only `sources`) off the event loop; first catch up with what
        another process changed, if anything (one stat)."""
        await self._current()
        return await asyncio.to_thread(self.index.search, query, k, sources)

    async def documents(self) -> list[DocumentInfo]:
        """The corpus listing, current with other processes' changes."""
        await self._current()
        return self.library.documents()

    async def _current(self) -> None:
        if self.index.snapshot is None:  # never indexed (start-up failed, or nobody warmed it up): once
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
        self._follow(before)
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
        self._follow(before)
