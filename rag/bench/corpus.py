"""`rag bench corpus`: what a large, lasting corpus costs: a second CLI start, a question, an upload, a start.

- `--dataset DIR` (BEIR layout): one file per document in a temporary folder (SciFact: 5,183 files); times
  `rag search` twice as a user would run it (a new process each time, the second one with the store
  written by the first), then, in one process, a question's retrieval through the retriever (what the
  chat does) against the engine's own search, over the test queries.
- `--chunks N`: a synthetic folder of N chunks; the time from uploading one small document to it being
  searchable (applied incrementally, exact scores), the background rebuild that follows, and a start
  with the unchanged corpus (store loaded, no parsing), with the process's peak memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.bench.ingest import _WORDS, write_background
from rag.config import Settings
from rag.metrics import percentile
from rag.index.retriever import Retriever
from rag.index.search import search_index
from rag.runtime import build_retriever


@dataclass(frozen=True)
class FolderRow:
    files: int
    chunks: int
    engine: str
    first_search_s: float
    second_search_s: float
    retrieval_p50_ms: float  # Retriever.search, as a chat question
    engine_p50_ms: float  # the snapshot's own search (analysis, engine, signals)


@dataclass(frozen=True)
class ScaleRow:
    chunks: int
    engine: str
    first_index_s: float
    prepare_updates_s: float
    upload_to_searchable_ms: float
    merge_s: float
    start_unchanged_s: float
    retrieval_p50_ms: float  # Retriever.search after that start, as a chat question
    engine_p50_ms: float  # the snapshot's own search
    peak_rss_mb: float


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_dataset_folder(dataset: Path, folder: Path) -> int:
    """One Markdown file per BEIR document (title as heading); returns how many."""
    count = 0
    with open(dataset / "corpus.jsonl", encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(f"# {doc.get('title') or doc['_id']}\n\n{doc['text']}\n", encoding="utf-8")
            count += 1
    return count


def _queries(dataset: Path, split: str = "test") -> list[str]:
    wanted = {line.split("\t")[0] for line in (dataset / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]}
    out = []
    with open(dataset / "queries.jsonl", encoding="utf-8") as lines:
        for line in lines:
            q = json.loads(line)
            if q["_id"] in wanted:
                out.append(q["text"])
    return out


def run_folder_bench(settings: Settings, dataset: Path) -> FolderRow:
    with tempfile.TemporaryDirectory(prefix="rag-bench-corpus-") as tmp:
        folder, data = Path(tmp) / "corpus", Path(tmp) / "data"
        folder.mkdir()
        files = write_dataset_folder(dataset, folder)
        env = {**os.environ, "RAG_CORPUS_DIR": str(folder), "RAG_DATA_DIR": str(data), "RAG_ENGINE": settings.engine}
        walls = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "rag"), "search", "cholesterol and heart disease", "--k", "3"],
                           env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        local = settings.model_copy(update={"corpus_dir": folder, "data_dir": data})
        retriever = build_retriever(local)
        retriever.warm_up()
        snapshot = retriever.snapshot
        assert snapshot is not None
        in_app, engine = _question_times(retriever, _queries(dataset), local.top_k)
        return FolderRow(files, len(snapshot.chunks), snapshot.engine.name, round(walls[0], 2), round(walls[1], 2),
                         in_app, engine)


def _question_times(retriever: Retriever, queries: list[str], k: int) -> tuple[float, float]:
    """p50 ms of a question's retrieval through the retriever (as the chat asks) and of the snapshot's own
    search, over the same queries."""
    snapshot = retriever.snapshot
    assert snapshot is not None

    async def questions() -> list[float]:
        times = []
        for q in queries:
            t = time.perf_counter()
            await retriever.search(q, k)
            times.append((time.perf_counter() - t) * 1000)
        return times

    in_app = asyncio.run(questions())
    engine = []
    for q in queries:
        t = time.perf_counter()
        search_index(snapshot, retriever.analyzer, q, k)
        engine.append((time.perf_counter() - t) * 1000)
    return round(percentile(in_app, 50), 3), round(percentile(engine, 50), 3)


def run_scale_bench(settings: Settings, chunks: int) -> ScaleRow:
    with tempfile.TemporaryDirectory(prefix="rag-bench-corpus-") as tmp:
        folder, data = Path(tmp) / "corpus", Path(tmp) / "data"
        folder.mkdir()
        write_background(folder, chunks)
        local = settings.model_copy(update={"corpus_dir": folder, "data_dir": data})
        retriever = build_retriever(local)
        t = time.perf_counter()
        retriever.warm_up()
        first = time.perf_counter() - t
        t = time.perf_counter()
        retriever.index.prepare_updates()  # the app does this in the background after start-up
        prepare = time.perf_counter() - t

        async def upload() -> tuple[float, float]:
            t0 = time.perf_counter()
            outcome = await retriever.add_upload("note.md", b"# Field note\n\nThe quokkaxylophone census counted 17 animals.\n")
            hit = await retriever.search("quokkaxylophone census", 1)
            searchable = (time.perf_counter() - t0) * 1000
            if outcome.status != "added" or not hit.passages or hit.passages[0].chunk.source != outcome.source:
                raise RuntimeError("the upload is not searchable")
            t1 = time.perf_counter()
            await retriever.settled()
            return searchable, time.perf_counter() - t1

        searchable_ms, merge_s = asyncio.run(upload())
        fresh = build_retriever(local)
        t = time.perf_counter()
        fresh.warm_up()
        start = time.perf_counter() - t
        snapshot = fresh.snapshot
        assert snapshot is not None
        queries = [" ".join(random.Random(i).sample(_WORDS, 4)) for i in range(200)]
        in_app, engine = _question_times(fresh, queries, local.top_k)
        return ScaleRow(len(snapshot.chunks), snapshot.engine.name, round(first, 2), round(prepare, 2),
                        round(searchable_ms, 1), round(merge_s, 2), round(start, 2), in_app, engine, round(_peak_rss_mb(), 0))


def report_json(rows: list[FolderRow | ScaleRow]) -> str:
    return json.dumps([asdict(r) for r in rows])


def report_text(rows: list[FolderRow | ScaleRow]) -> str:
    lines = []
    for r in rows:
        if isinstance(r, FolderRow):
            lines.append(f"{r.files} files, {r.chunks} chunks ({r.engine}): rag search {r.first_search_s:.2f} s, then "
                         f"{r.second_search_s:.2f} s; a question's retrieval p50 {r.retrieval_p50_ms:.2f} ms "
                         f"(the engine's own search {r.engine_p50_ms:.2f} ms)")
        else:
            lines.append(f"{r.chunks} chunks ({r.engine}): first index {r.first_index_s:.1f} s, postings {r.prepare_updates_s:.1f} s; "
                         f"upload to searchable {r.upload_to_searchable_ms:.0f} ms, background rebuild {r.merge_s:.1f} s; "
                         f"start with the corpus unchanged {r.start_unchanged_s:.2f} s, then a question's retrieval p50 "
                         f"{r.retrieval_p50_ms:.2f} ms (engine {r.engine_p50_ms:.2f} ms); peak RSS {r.peak_rss_mb:.0f} MB")
    return "\n".join(lines)
