"""`rag bench retrieval`: quality and speed of the app's own analyzer and engines on a BEIR data set."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.analysis import Analyzer
from rag.metrics import ndcg_at_k, percentile, recall_at_k
from rag.errors import RagError
from rag.retrieval import build_index, search_index
from rag.types import Chunk


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR data set: documents (id, title, text), queries (id -> text) and graded test judgements."""

    docs: list[tuple[str, str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


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


def load_beir(directory: Path, split: str = "test") -> BeirDataset:
    """Read corpus.jsonl, queries.jsonl and qrels/<split>.tsv; only judged queries are kept."""
    try:
        docs = []
        with (directory / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    docs.append((str(row["_id"]), row.get("title") or "", row.get("text") or ""))
        qrels: dict[str, dict[str, int]] = {}
        with (directory / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 3 or not parts[2].lstrip("-").isdigit():
                    continue  # header or malformed line
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        queries = {}
        with (directory / "queries.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    if str(row["_id"]) in qrels:
                        queries[str(row["_id"])] = row["text"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise RagError(f"{directory} is not a BEIR data set ({type(exc).__name__}: {exc})") from exc
    if not docs or not queries:
        raise RagError(f"{directory}: no documents or no judged queries")
    return BeirDataset(docs, queries, qrels)


def scaled_documents(docs: list[tuple[str, str, str]], target: int, seed: int = 13) -> list[tuple[str, str, str]]:
    """The documents plus perturbed copies (about 15% of words dropped, 5% repeated) up to `target`.

    Copies have new ids, so they never count as relevant: quality numbers are meaningful only unscaled;
    scaled runs are for the latency curve.
    """
    if target <= len(docs):
        return docs[:target] if target > 0 else docs
    rng = random.Random(seed)
    out = list(docs)
    copy = 0
    while len(out) < target:
        doc_id, title, text = docs[copy % len(docs)]
        words = []
        for word in text.split():
            roll = rng.random()
            if roll < 0.15:
                continue
            words.append(word)
            if roll > 0.95:
                words.append(word)
        out.append((f"{doc_id}~{copy // len(docs) + 1}", title, " ".join(words)))
        copy += 1
    return out


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

    latencies: list[float] = []
    ndcgs: list[float] = []
    recalls: list[float] = []
    run_started = clock()
    for query_id, text in dataset.queries.items():
        t0 = clock()
        result = search_index(snapshot, analyzer, text, 100)
        latencies.append((clock() - t0) * 1000)
        ranked = [p.chunk.source for p in result.passages]
        ndcgs.append(ndcg_at_k(ranked, dataset.qrels[query_id], 10))
        recalls.append(recall_at_k(ranked, dataset.qrels[query_id], 100))
    run_seconds = clock() - run_started
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
