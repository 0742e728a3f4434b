"""Immutable BM25 snapshots and searching them: pure functions of a snapshot and a query, with the
support signals of each result. Built completely (off the event loop) and swapped in whole by
`rag.index.index.Index`, so a concurrent query sees either the old snapshot or the new one."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from rag.index.analysis import Analyzer
from rag.index.engines import ENGINES, BM25Engine, build_engine, top_k
from rag.index.support import SIGNAL_DEPTH, SupportModel, calibration_label, predictors, shipped_model
from rag.types import Chunk, Passage, SearchResult, SupportSignals


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


# A follow-up's query carries the previous question's words (rag.answer.follow_ups) at this weight against
# its own (1.0): they bring back the subject the follow-up leaves out without outweighing what it asks.
EARLIER_WEIGHT = 0.5


@dataclass(frozen=True)
class QueryTerms:
    """A query's words as groups of terms (rag.index.analysis.Analyzer.query_groups) and each term's weight:
    1.0 for the question's own, EARLIER_WEIGHT for those only the previous question has."""

    groups: tuple[tuple[str, ...], ...]
    weights: Mapping[str, float]

    @property
    def terms(self) -> list[str]:
        return list(self.weights)

    def split(self) -> tuple[list[str], list[str]]:
        """(own terms, earlier terms)."""
        return [t for t, w in self.weights.items() if w == 1.0], [t for t, w in self.weights.items() if w != 1.0]


def query_terms(analyzer: Analyzer, query: str, earlier: str = "") -> QueryTerms:
    """The analysed terms of `query`, and of `earlier` (the previous question, for a follow-up) at
    EARLIER_WEIGHT, except the terms the query has itself."""
    own = analyzer.query_groups(query)
    weights = {t: 1.0 for group in own for t in group}
    carried = [g for g in (analyzer.query_groups(earlier) if earlier.strip() else []) if g[0] not in weights]
    for group in carried:
        for t in group:
            weights.setdefault(t, EARLIER_WEIGHT)
    return QueryTerms(tuple(own) + tuple(carried), weights)


def search_index(
    snapshot: IndexSnapshot,
    analyzer: Analyzer,
    query: str,
    k: int,
    sources: frozenset[str] | None = None,
    model: SupportModel | None = None,
    earlier: str = "",
) -> SearchResult:
    """The k best passages for `query` and the support signals. CPU-bound and pure.

    With `sources`, only those documents are searched (the user pointed at them, e.g. by attaching them);
    if the query matches fewer than k of their chunks, the rest are filled in reading order, so "summarize
    the file I attached" still gets the file's opening passages. `earlier`: the previous question when
    `query` is a follow-up, its words weighted below the query's own.
    """
    if sources is not None:
        return _search_within(snapshot, analyzer, query, k, sources, model, earlier)
    weighted = query_terms(analyzer, query, earlier)
    terms = weighted.terms
    # The support predictors read the distribution of the best SIGNAL_DEPTH scores, not just the k shown.
    hits = _top(snapshot, weighted, max(k, SIGNAL_DEPTH)) if terms else []
    passages = tuple(Passage(snapshot.chunks[i], score, rank) for rank, (i, score) in enumerate(hits[:k], start=1))
    signals = support_signals(weighted, hits, snapshot, model or shipped_model())
    return SearchResult(query, passages, signals, tuple(terms), calibration_label(model))


def weighted_scores(engine: BM25Engine, weighted: QueryTerms) -> np.ndarray | None:
    """BM25 with each term's weight: the own terms' scores plus EARLIER_WEIGHT times the earlier ones'
    (BM25 is a sum over terms, so this is exact); None when no term is in the corpus."""
    own, earlier = weighted.split()
    scores = engine.scores(own) if own else None
    carried = engine.scores(earlier) if earlier else None
    if carried is None:
        return scores
    carried = EARLIER_WEIGHT * carried
    return carried if scores is None else scores + carried


def _top(snapshot: IndexSnapshot, weighted: QueryTerms, k: int) -> list[tuple[int, float]]:
    """The k best chunks: body BM25, plus the title field's BM25 times its weight."""
    body = weighted_scores(snapshot.engine, weighted)
    if body is None:  # no query term in any chunk's text: a title alone does not make a passage relevant
        return []
    titles = weighted_scores(snapshot.titles, weighted) if snapshot.titles is not None else None
    return top_k(body if titles is None else body + snapshot.title_weight * titles, k)


def _search_within(
    snapshot: IndexSnapshot, analyzer: Analyzer, query: str, k: int, sources: frozenset[str],
    model: SupportModel | None, earlier: str = "",
) -> SearchResult:
    chosen = [c for i, c in enumerate(snapshot.chunks)
              if c.source in sources and (snapshot.live is None or snapshot.live[i])]
    engine = snapshot.engine.name if snapshot.engine.name in ENGINES else "auto"  # a segmented snapshot
    sub = build_index(chosen, analyzer, engine, snapshot.k1, snapshot.b, title_weight=snapshot.title_weight)
    result = search_index(sub, analyzer, query, k, model=model, earlier=earlier)
    passages = list(result.passages)
    seen = {(p.chunk.source, p.chunk.index) for p in passages}
    for chunk in chosen:
        if len(passages) >= k:
            break
        if (chunk.source, chunk.index) not in seen:
            passages.append(Passage(chunk, 0.0, len(passages) + 1))
    return SearchResult(query, tuple(passages), result.signals, result.analysed_terms)


def support_signals(
    weighted: QueryTerms, hits: Sequence[tuple[int, float]], snapshot: IndexSnapshot, model: SupportModel
) -> SupportSignals:
    """Top score, margin to the second, the share of the question's words found in the top passage, the
    support predictors over the best scores (`hits`, best first) and `support` from `model`.

    `weighted.groups`: the question's words, each as its terms (rag.index.analysis.Analyzer.query_groups); a
    word counts as found when any of its terms is, weighted by its rarest term's idf (and its weight).
    """
    groups = weighted.groups
    if not hits:
        return SupportSignals.empty(len(groups))
    terms = weighted.terms
    titles = snapshot.titles if snapshot.titles is not None and snapshot.title_weight > 0 else None
    return signals_from_statistics(
        groups, [s for _, s in hits], snapshot.term_sets[hits[0][0]],
        {t: snapshot.engine.idf(t) for t in terms}, snapshot.engine.idf(""),  # "" is never a term: df = 0
        {t: titles.idf(t) for t in terms} if titles is not None else None,
        snapshot.k1, snapshot.title_weight, model, weighted.weights)


def signals_from_statistics(
    groups: Sequence[Sequence[str]], scores: Sequence[float], present: frozenset[str], idf: Mapping[str, float],
    unseen: float, title_idf: Mapping[str, float] | None, k1: float, title_weight: float, model: SupportModel,
    term_weights: Mapping[str, float] | None = None,
) -> SupportSignals:
    """The support signals from corpus statistics, wherever they come from (an in-memory snapshot, or a
    search server: rag.index.opensearch). `scores`: the best scores, best first; `present`: the terms of
    the top passage; `idf`: each query term's body idf; `unseen`: the idf of a term no document holds;
    `title_idf`: the same for the title field (None: not scored); `term_weights`: each term's weight in
    the scores (QueryTerms; None: all 1), which the highest possible score, coverage and the known share
    count too (typicality and the number of terms do not)."""
    if not scores:
        return SupportSignals.empty(len(groups))
    weight = term_weights or {}
    top_score = scores[0]
    second = scores[1] if len(scores) > 1 else 0.0
    shares = [weight.get(group[0], 1.0) for group in groups]
    weights = [max(idf[t] for t in group) * share for group, share in zip(groups, shares)]
    total_weight = sum(weights)
    found = [any(t in present for t in group) for group in groups]
    known = sum(w for w, group in zip(weights, groups) if any(idf[t] < unseen - 1e-9 for t in group))
    # Every term at saturation (tf -> inf gives tf·(k1+1)/(tf+norm) -> k1+1), in both fields.
    max_score = (k1 + 1) * sum(v * weight.get(t, 1.0) for t, v in idf.items())
    if title_idf is not None:
        max_score += title_weight * (k1 + 1) * sum(v * weight.get(t, 1.0) for t, v in title_idf.items())
    coverage = sum(s for s, f in zip(shares, found) if f) / sum(shares) if groups else 0.0
    weighted = sum(w for w, f in zip(weights, found) if f) / total_weight if total_weight > 0 else 0.0
    # Typicality reads each word in the form the corpus has most (a word's other-language or prefix forms
    # are often rarer or absent).
    common = [min(idf[t] for t in group) for group in groups]
    typicality = 1 - sum(common) / len(common) / unseen if common and unseen > 0 else 0.0
    values = predictors(list(scores), max_score, coverage, weighted,
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
        on_topic=model.on_topic(values),
        max_score=max_score,
        normalized_top=values["normalized_top"],
        nqc=values["nqc"],
        wig=values["wig"],
        skew=values["skew"],
        known_share=values["known_share"],
        typicality=values["typicality"],
    )
