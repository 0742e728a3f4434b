"""The index: BM25 over the library's chunks, snapshots swapped whole, analysed terms cached per
document, incremental changes with exact scores (`rag.index.segments`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from rag.documents.corpus import DocumentKey
from rag.index.analysis import Analyzer
from rag.index.engines import BM25Engine, resolve_engine
from rag.index.persistence import EngineStore
from rag.index.search import IndexSnapshot, TITLE_B, TermSets, build_index, index_text, search_index, title_text
from rag.index.segments import Postings, SegmentedEngine, SegmentedField
from rag.index.support import SupportModel
from rag.types import Chunk, SearchResult, SupportSignals


log = logging.getLogger(__name__)


class SearchIndex(Protocol):
    """What the retriever needs of an index: the in-memory `Index`, or a search server's
    (rag.index.opensearch.OpenSearchIndex). Rebuilds and updates are CPU- or I/O-bound: call them from a
    thread."""

    analyzer: Analyzer
    support_model: SupportModel | None

    @property
    def ready(self) -> bool:
        """True once the index matched the library at the last sync (False: rebuild before searching)."""
        ...

    @property
    def snapshot(self) -> IndexSnapshot | None:
        """The in-memory snapshot queries use (None for a search server)."""
        ...

    @property
    def segmented(self) -> bool:
        """True while a background merge would help (in-memory segments)."""
        ...

    @property
    def generation(self) -> int:
        ...

    @property
    def terms_cache(self) -> Mapping[DocumentKey, Sequence[Sequence[str]]]:
        """Analysed terms per document, for the store."""
        ...

    def preload_terms(self, terms: Mapping[DocumentKey, Sequence[Sequence[str]]]) -> None:
        ...

    def engine_key(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> str | None:
        ...

    def rebuild(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> object:
        """Index exactly these documents."""
        ...

    def update(self, added: Mapping[DocumentKey, tuple[Chunk, ...]], removed: Iterable[str]) -> object:
        """Apply one change: documents added or changed, sources removed."""
        ...

    def prepare_updates(self) -> None:
        ...

    def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """The k best passages and their support signals (`earlier`: the previous question, for a
        follow-up: its words weighted below the query's own, rag.index.search.EARLIER_WEIGHT)."""
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
    def ready(self) -> bool:
        """True once a snapshot is installed."""
        return self._snapshot is not None

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
        statistics (N, df, average length) are summed over what is live (rag.index.segments). Call `rebuild`
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

    def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """The k best passages in the current snapshot (an empty result before the first build)."""
        snapshot = self._snapshot
        if snapshot is None:
            return SearchResult(query, (), SupportSignals.empty(len(self.analyzer.query_groups(query))))
        return search_index(snapshot, self.analyzer, query, k, sources, self.support_model, earlier)
