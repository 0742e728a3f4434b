"""`rag bench retrieval`: quality and speed of the app's own analyzer and engines on a BEIR data set."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from rag.index.analysis import Analyzer
from rag.metrics import ndcg_at_k, percentile, recall_at_k
from rag.beir import BeirDataset
from rag.index.search import build_index, search_index
from rag.types import Chunk, SearchResult

if TYPE_CHECKING:
    from rag.index.opensearch import OpenSearchOptions


@dataclass(frozen=True)
class RetrievalReport:
    """The numbers `rag bench retrieval` prints; `--json` prints exactly these keys."""

    engine: str
    docs: int
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    index_seconds: float
    p50_ms: float
    p95_ms: float
    qps: float
    peak_rss_mb: float
    k1: float
    b: float
    title_weight: float = 0.0


def scaled_documents(docs: list[tuple[str, str, str]], target: int, seed: int = 13) -> list[tuple[str, str, str]]:
    """The documents plus perturbed copies (about 15% of words dropped, 5% repeated) up to `target`.

    Copies have new ids, so they never count as relevant: quality numbers are meaningful only unscaled;
    scaled runs are for the latency curve.
    """
    return list(iter_scaled_documents(docs, target, seed))


def iter_scaled_documents(docs: list[tuple[str, str, str]], target: int, seed: int = 13) -> Iterator[tuple[str, str, str]]:
    """`scaled_documents` one at a time: a million documents never sit in memory at once."""
    if target <= len(docs):
        yield from (docs[:target] if target > 0 else docs)
        return
    yield from docs
    rng = random.Random(seed)
    for copy in range(target - len(docs)):
        doc_id, title, text = docs[copy % len(docs)]
        words = []
        for word in text.split():
            roll = rng.random()
            if roll < 0.15:
                continue
            words.append(word)
            if roll > 0.95:
                words.append(word)
        yield f"{doc_id}~{copy // len(docs) + 1}", title, " ".join(words)


def run_retrieval_bench(
    dataset: BeirDataset,
    engine: str,
    k1: float,
    b: float,
    scale: int | None = None,
    analyzer: Analyzer | None = None,
    clock: Callable[[], float] = time.perf_counter,
    title_weight: float = 0.0,
) -> RetrievalReport:
    """Index the data set with the app's analyzer and engine, run every judged query one at a time."""
    analyzer = analyzer or Analyzer()
    docs = scaled_documents(dataset.docs, scale) if scale else dataset.docs
    chunks = [Chunk(source=i, index=0, text=text, start=0, end=len(text), title=title) for i, title, text in docs]
    started = clock()
    snapshot = build_index(chunks, analyzer, engine, k1, b, title_weight=title_weight)
    index_seconds = clock() - started

    latencies, ndcgs, recalls, run_seconds = _judged(lambda text: search_index(snapshot, analyzer, text, 100),
                                                     dataset, clock)
    n = len(dataset.queries)
    return RetrievalReport(
        engine=engine,
        docs=len(chunks),
        queries=n,
        ndcg_at_10=round(sum(ndcgs) / n, 4),
        recall_at_100=round(sum(recalls) / n, 4),
        index_seconds=round(index_seconds, 3),
        p50_ms=round(percentile(latencies, 50), 3),
        p95_ms=round(percentile(latencies, 95), 3),
        qps=round(n / run_seconds, 1) if run_seconds > 0 else 0.0,
        # ru_maxrss is KiB on Linux: the process's peak, data set loading included.
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        k1=k1,
        b=b,
        title_weight=title_weight,
    )


def report_json(report: RetrievalReport) -> str:
    """One JSON object with the documented keys."""
    return json.dumps(asdict(report))


def report_text(report: RetrievalReport) -> str:
    """A short human-readable summary."""
    return (
        f"engine {report.engine} (k1={report.k1}, b={report.b}, title weight {report.title_weight}): "
        f"{report.docs} docs, {report.queries} queries\n"
        f"  nDCG@10 {report.ndcg_at_10:.4f}   Recall@100 {report.recall_at_100:.4f}\n"
        f"  index {report.index_seconds:.2f} s   query p50 {report.p50_ms:.2f} ms   p95 {report.p95_ms:.2f} ms   "
        f"{report.qps:.0f} q/s   peak RSS {report.peak_rss_mb:.0f} MB"
    )


@dataclass(frozen=True)
class ServerReport:
    """What `rag bench retrieval --engine opensearch` measures beyond the local engines' figures."""

    retrieval: RetrievalReport
    chunks_per_s: float
    server_heap_mb: float
    server: str
    app_p50_ms: float  # one question as the app asks it: top_k passages with the support signals
    app_p95_ms: float
    bm25s_app_p50_ms: float | None = None  # the same questions on bm25s in this run (unscaled runs only)
    bm25s_app_p95_ms: float | None = None


def run_opensearch_bench(
    dataset: BeirDataset,
    options: OpenSearchOptions,
    scale: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    top_k: int = 5,
) -> ServerReport:
    """The same figures against a cluster: documents streamed into a fresh index (never all in memory:
    the peak RSS is this process's, the app's side), every judged query searched through the app's client."""
    from rag.index.opensearch import OpenSearchIndex

    analyzer = Analyzer()
    index = OpenSearchIndex(analyzer, options)
    total = scale or len(dataset.docs)
    docs = iter_scaled_documents(dataset.docs, total)
    chunks = ((Chunk(source=i, index=0, text=text, start=0, end=len(text), title=title), "scale")
              for i, title, text in docs)
    started = clock()
    written = index.load(chunks, (lambda n: progress(n, total)) if progress else None)
    index_seconds = clock() - started
    latencies, ndcgs, recalls, run_seconds = _judged(lambda text: index.search(text, 100), dataset, clock)
    n = len(dataset.queries)
    app = _latencies(lambda text: index.search(text, top_k), dataset, clock)
    local: list[float] | None = None
    if scale is None:  # the app's added time per question over bm25s, measured side by side
        chunks_list = [Chunk(source=i, index=0, text=text, start=0, end=len(text), title=title)
                       for i, title, text in dataset.docs]
        snapshot = build_index(chunks_list, analyzer, "bm25s", options.k1, options.b, title_weight=options.title_weight)
        local = _latencies(lambda text: search_index(snapshot, analyzer, text, top_k), dataset, clock)
    report = RetrievalReport(
        engine="opensearch", docs=written, queries=n, ndcg_at_10=round(sum(ndcgs) / n, 4),
        recall_at_100=round(sum(recalls) / n, 4), index_seconds=round(index_seconds, 3),
        p50_ms=round(percentile(latencies, 50), 3), p95_ms=round(percentile(latencies, 95), 3),
        qps=round(n / run_seconds, 1) if run_seconds > 0 else 0.0,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        k1=options.k1, b=options.b, title_weight=options.title_weight)
    return ServerReport(report, round(written / index_seconds, 1) if index_seconds > 0 else 0.0,
                        round(index.heap_mb(), 1), index.health(), round(percentile(app, 50), 3),
                        round(percentile(app, 95), 3), round(percentile(local, 50), 3) if local else None,
                        round(percentile(local, 95), 3) if local else None)


def _judged(search: Callable[[str], SearchResult], dataset: BeirDataset, clock: Callable[[], float]
            ) -> tuple[list[float], list[float], list[float], float]:
    """Every judged query one at a time: latencies (ms), nDCG@10, Recall@100, and the whole run's seconds."""
    latencies: list[float] = []
    ndcgs: list[float] = []
    recalls: list[float] = []
    run_started = clock()
    for query_id, text in dataset.queries.items():
        t0 = clock()
        result = search(text)
        latencies.append((clock() - t0) * 1000)
        ranked = [p.chunk.source for p in result.passages]
        ndcgs.append(ndcg_at_k(ranked, dataset.qrels[query_id], 10))
        recalls.append(recall_at_k(ranked, dataset.qrels[query_id], 100))
    return latencies, ndcgs, recalls, clock() - run_started


def _latencies(search: Callable[[str], object], dataset: BeirDataset, clock: Callable[[], float]) -> list[float]:
    """Milliseconds per judged query."""
    out = []
    for text in dataset.queries.values():
        t0 = clock()
        search(text)
        out.append((clock() - t0) * 1000)
    return out
