"""The `rag` command line. The only place, with app.py, where errors become user-facing text."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import click

from rag.config import Settings, load_settings
from rag.engines import ENGINES
from rag.errors import RagError
from rag.runtime import build_retriever
from rag.types import DocumentInfo, SearchResult


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def cli(verbose: bool) -> None:
    """Grounded chat over a document corpus: inspect the corpus, search it, ask it, benchmark it."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# --- corpus -------------------------------------------------------------------------------------------


@cli.group()
def corpus() -> None:
    """Inspect the document corpus (RAG_CORPUS_DIR)."""


@corpus.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of documents.")
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Override RAG_CORPUS_DIR.")
def corpus_list(as_json: bool, corpus_dir: Path | None) -> None:
    """Every document: type, size, chunks, and status or the reason it was skipped."""
    settings = _settings(corpus_dir=corpus_dir)
    retriever = build_retriever(settings)
    try:
        retriever.warm_up()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    documents = retriever.corpus.documents()
    if as_json:
        click.echo(json.dumps([_document_json(d) for d in documents], indent=2))
        return
    click.echo(_documents_table(documents))
    served = [d for d in documents if d.status == "ok"]
    click.echo(
        f"\n{len(served)} documents served, {len(documents) - len(served)} skipped, "
        f"{sum(d.chunks for d in served)} chunks in {settings.corpus_dir}"
    )


def _document_json(doc: DocumentInfo) -> dict[str, object]:
    data = asdict(doc)
    data["path"] = data.pop("source")
    return data


def _documents_table(documents: list[DocumentInfo]) -> str:
    rows = [("DOCUMENT", "TYPE", "SIZE", "CHUNKS", "STATUS")]
    for d in documents:
        status = "ok" if d.status == "ok" else f"skipped: {d.reason}"
        rows.append((d.source, d.kind, _size(d.size_bytes), str(d.chunks), status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


# --- search -------------------------------------------------------------------------------------------


@cli.command()
@click.argument("query")
@click.option("--k", "k", type=click.IntRange(1, 100), help="Passages to return (default RAG_TOP_K).")
@click.option("--engine", type=click.Choice(ENGINES), help="Override RAG_ENGINE.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with passages and signals.")
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Override RAG_CORPUS_DIR.")
def search(query: str, k: int | None, engine: str | None, as_json: bool, corpus_dir: Path | None) -> None:
    """The passages the app would retrieve for QUERY, with provenance, scores and support signals."""
    settings = _settings(engine=engine, corpus_dir=corpus_dir)
    retriever = build_retriever(settings)
    from rag.retrieval import search_index

    try:
        retriever.warm_up()
        snapshot = retriever.snapshot
        assert snapshot is not None
        result = search_index(snapshot, retriever.analyzer, query, k or settings.top_k)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(search_json(result), indent=2))
        return
    click.echo(_search_text(result))


def search_json(result: SearchResult) -> dict[str, object]:
    """The `rag search --json` object: `passages` (path, chunk, score, text, ...) and `signals`."""
    return {
        "query": result.query,
        "terms": list(result.analysed_terms),
        "passages": [
            {
                "path": p.chunk.source,
                "chunk": p.chunk.index,
                "score": round(p.score, 4),
                "rank": p.rank,
                "heading": p.chunk.heading,
                "page": p.chunk.page,
                "span": [p.chunk.start, p.chunk.end],
                "text": p.chunk.text,
            }
            for p in result.passages
        ],
        "signals": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.signals).items()},
    }


def _search_text(result: SearchResult) -> str:
    if not result.passages:
        return f"No passage matches {result.query!r} (terms: {', '.join(result.analysed_terms) or 'none'})."
    s = result.signals
    lines = [
        f"top score {s.top_score:.2f}  margin {s.margin:.2f} ({s.relative_margin:.0%})  "
        f"coverage {s.coverage:.0%} of {s.query_terms} terms"
    ]
    for p in result.passages:
        snippet = " ".join(p.chunk.text.split())
        snippet = snippet[:240] + ("…" if len(snippet) > 240 else "")
        lines.append(f"\n[{p.rank}] {p.score:.2f}  {p.chunk.location}  (chunk {p.chunk.index}, chars {p.chunk.start}-{p.chunk.end})")
        lines.append(f"    {snippet}")
    return "\n".join(lines)


# --- bench --------------------------------------------------------------------------------------------


@cli.group()
def bench() -> None:
    """Benchmarks; results belong in BENCHMARKS.md."""


@bench.command("retrieval")
@click.option("--dataset", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")
@click.option("--engine", type=click.Choice(ENGINES), help="Override RAG_ENGINE.")
@click.option("--scale", type=click.IntRange(1), help="Replicate the corpus (perturbed copies) to N chunks.")
@click.option("--split", default="test", show_default=True, help="Which qrels file to evaluate.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def bench_retrieval(dataset: Path, engine: str | None, scale: int | None, split: str, as_json: bool) -> None:
    """nDCG@10, Recall@100, index time, query latency p50/p95, queries/s and peak memory."""
    from rag.bench.retrieval import load_beir, report_json, report_text, run_retrieval_bench

    settings = _settings(engine=engine)
    try:
        data = load_beir(dataset, split)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    report = run_retrieval_bench(data, settings.engine, settings.bm25_k1, settings.bm25_b, scale)
    click.echo(report_json(report) if as_json else report_text(report))


def main() -> None:
    """Console-script entry point."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
