"""A BEIR data set on disk (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), read for benchmarks,
evaluation and calibration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR data set: documents (id, title, text), queries (id -> text) and graded test judgements."""

    docs: list[tuple[str, str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]



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
