"""The `rag` command line. The only place, with app.py, where errors become user-facing text."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli.history import export, users
from rag.cli.eval import eval_command
from rag.cli.support import bench_support, calibrate
from rag.config import Settings, load_settings
from rag.index.engines import ENGINES
from rag.errors import RagError
from rag.runtime import build_retriever
from rag.chat.progress import format_rate, rate
from rag.terminal import shown
from rag.units import format_size
from rag.types import (
    Answer,
    DocumentInfo,
    EscalationDecided,
    Generation,
    ModelFailed,
    ModelFinished,
    ModelStarted,
    Retrieved,
    SearchResult,
    StageFinished,
    TokenDelta,
)

if TYPE_CHECKING:
    from rag.beir import BeirDataset
    from rag.index.opensearch import OpenSearchOptions


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
    documents = retriever.library.documents()
    if as_json:
        click.echo(json.dumps([_document_json(d) for d in documents], indent=2))
        return
    click.echo(_documents_table(documents))
    served = [d for d in documents if d.status == "ok"]
    click.echo(
        f"\n{len(served)} documents served, {len(documents) - len(served)} skipped, "
        f"{sum(d.chunks for d in served)} chunks in {settings.corpus_dir}"
    )


@corpus.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def corpus_add(paths: tuple[Path, ...]) -> None:
    """Copy documents into the corpus's uploads folder and index them; exit 1 if any is rejected."""
    settings = _settings()
    asyncio.run(_corpus_add(settings, paths))


async def _corpus_add(settings: Settings, paths: tuple[Path, ...]) -> None:
    """Store each file through the library (under the inter-process lock). Nothing is indexed here: a
    running app picks the files up at its next question (from the changes file), the next start from
    the folder; the store spares the duplicate check from parsing the whole corpus again."""
    from rag.errors import UnsupportedDocument
    from rag.documents.library import UploadOutcome
    from rag.runtime import build_library

    library = build_library(settings)
    retriever = build_retriever(settings, library)
    rejected = 0
    try:
        await asyncio.to_thread(library.remove_leftovers)
        await asyncio.to_thread(retriever.load_store)
        for path in paths:
            try:
                data = await asyncio.to_thread(library.read_file, path)  # size-checked before reading
                prepared = await asyncio.to_thread(library.prepare, path.name, data)
            except UnsupportedDocument as exc:
                rejected += 1
                click.echo(f"rejected {shown(str(path))}: {shown(exc.reason)}", err=True)
                continue
            outcome = prepared if isinstance(prepared, UploadOutcome) else await asyncio.to_thread(library.commit, prepared)
            if outcome.status == "added":
                pages = f", {outcome.pages} pages" if outcome.pages else ""
                click.echo(f"added {shown(str(path))} as {shown(outcome.source or '')} ({outcome.chunks} chunks{pages}; parsed in "
                           f"{outcome.parse_ms:.0f} ms)")
            elif outcome.status == "duplicate":
                click.echo(f"skipped {shown(str(path))}: {shown(outcome.reason or '')}")
            else:
                rejected += 1
                click.echo(f"rejected {shown(str(path))}: {shown(outcome.reason or '')}", err=True)
    except RagError as exc:  # a failed write, or the folder locked by another process for too long
        raise click.ClickException(str(exc)) from exc
    if rejected:
        sys.exit(1)


@corpus.command("sync")
def corpus_sync() -> None:
    """RAG_ENGINE=opensearch: reconcile the cluster's index with the folder, with progress (a first start
    of a large corpus, or after the cluster was rebuilt); prints what it did."""
    settings = _settings()
    if settings.engine != "opensearch":
        raise click.ClickException("rag corpus sync is for RAG_ENGINE=opensearch; the local engines index at start")
    from rag.index.opensearch import OpenSearchIndex

    retriever = build_retriever(settings)
    index = retriever.index
    assert isinstance(index, OpenSearchIndex)
    try:
        retriever.load_store()
        retriever.library.scan()
        documents = retriever.library.document_chunks()
        with click.progressbar(length=max(len(documents), 1), label="documents", file=sys.stderr) as bar:
            seen = [0]

            def progress(done: int, _total: int) -> None:
                bar.update(done - seen[0])
                seen[0] = done

            index.progress = progress
            report = index.rebuild(documents)
        retriever.save_store()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{report.indexed} documents indexed ({report.chunks} chunks), {report.deleted} deleted, "
               f"{report.skipped} held by another process; {index.count():,} chunks in {settings.opensearch_index}")


@corpus.command("remove")
@click.argument("name")
def corpus_remove(name: str) -> None:
    """Delete an uploaded document (a path as `rag corpus list` shows it, or its file name)."""
    settings = _settings()
    retriever = build_retriever(settings)
    try:
        retriever.warm_up()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    sources = [d.source for d in retriever.library.documents()]
    matches = [s for s in sources if s == name] or [s for s in sources if s.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        raise click.ClickException(f"no single document named {name!r}" + (f" (matches: {shown(', '.join(matches))})" if matches else ""))
    try:
        asyncio.run(retriever.remove_document(matches[0]))
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {shown(matches[0])}")


def _document_json(doc: DocumentInfo) -> dict[str, object]:
    data = asdict(doc)
    data["path"] = data.pop("source")
    return data


def _documents_table(documents: list[DocumentInfo]) -> str:
    rows = [("DOCUMENT", "TYPE", "SIZE", "CHUNKS", "STATUS")]
    for d in documents:
        status = "ok" if d.status == "ok" else f"skipped: {d.reason}"
        rows.append((shown(d.source), shown(d.kind), format_size(d.size_bytes), str(d.chunks), shown(status)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


# --- search -------------------------------------------------------------------------------------------


@cli.command()
@click.argument("query")
@click.option("--k", "k", type=click.IntRange(1, 100), help="Passages to return (default RAG_TOP_K).")
@click.option("--engine", type=click.Choice([*ENGINES, "opensearch"]), help="Override RAG_ENGINE.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with passages and signals.")
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Override RAG_CORPUS_DIR.")
def search(query: str, k: int | None, engine: str | None, as_json: bool, corpus_dir: Path | None) -> None:
    """The passages the app would retrieve for QUERY, with provenance, scores and support signals."""
    settings = _settings(engine=engine, corpus_dir=corpus_dir)
    try:
        retriever = build_retriever(settings)
        retriever.warm_up()
        result = retriever.index.search(query, k or settings.top_k)
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
        f"support {s.support:.0%}  top score {s.top_score:.2f}  margin {s.margin:.2f} ({s.relative_margin:.0%})  "
        f"coverage {s.coverage:.0%} of {s.query_terms} terms"
    ]
    for p in result.passages:
        snippet = " ".join(p.chunk.text.split())
        snippet = snippet[:240] + ("…" if len(snippet) > 240 else "")
        lines.append(f"\n[{p.rank}] {p.score:.2f}  {shown(p.chunk.location)}  (chunk {p.chunk.index}, chars {p.chunk.start}-{p.chunk.end})")
        lines.append(f"    {shown(snippet)}")
    return "\n".join(lines)


# --- ask and doctor ------------------------------------------------------------------------------


@cli.command()
@click.argument("question")
@click.option("--mode", type=click.Choice(["auto", "small", "large"]), help="Override RAG_MODE.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of streamed text.")
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Override RAG_CORPUS_DIR.")
def ask(question: str, mode: str | None, as_json: bool, corpus_dir: Path | None) -> None:
    """Answer QUESTION from the corpus, streaming to stdout; stages and timings go to stderr.

    Exits 1 with a one-line reason when no model produced the answer (the extract is still printed).
    """
    settings = _settings(mode=mode, corpus_dir=corpus_dir)
    answer = asyncio.run(_ask(settings, question, as_json))
    if answer.model == "extractive":
        click.echo(f"rag ask: no model answered: {answer.note}", err=True)
        sys.exit(1)


async def _ask(settings: Settings, question: str, as_json: bool) -> Answer:
    from rag.runtime import build_services

    services = build_services(settings)
    answer: Answer | None = None
    try:
        async for event in services.pipeline.run(question, (), services.options):
            if isinstance(event, Answer):
                answer = event
            elif not as_json:
                _render_event(event)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        await services.aclose()
    assert answer is not None
    if as_json:
        click.echo(json.dumps(answer_json(answer), indent=2))
    else:
        if answer.model in ("extractive", "off-topic"):
            click.echo(answer.text)
        else:
            click.echo()
        if answer.note:
            click.echo(f"\nNote: {answer.note}")
        for ref in answer.sources:
            cited = " (cited)" if ref.number in answer.cited else ""
            click.echo(f"[{ref.number}] {shown(ref.passage.chunk.location)}{cited}")
    return answer


def _render_event(event: object) -> None:
    err = functools.partial(click.echo, err=True)
    if isinstance(event, Retrieved):
        s = event.result.signals
        err(f"retrieve · {event.ms:.0f} ms · {len(event.result.passages)} passages · support {s.support:.0%} · "
            f"coverage {s.weighted_coverage:.0%}" + (f" · a follow-up to {event.earlier!r}" if event.earlier else ""))
    elif isinstance(event, StageFinished):
        err(f"{event.name} · {event.ms:.0f} ms · {event.detail}")
    elif isinstance(event, ModelStarted):
        err(f"{event.alias} ({event.model_id}) · {event.role} · {event.endpoint}")
    elif isinstance(event, TokenDelta):
        click.echo(event.text, nl=False)
    elif isinstance(event, ModelFinished):
        g = event.generation
        est = " (estimated)" if g.usage_estimated else ""
        err(f"\n{g.alias} · first token {g.first_token_ms:.0f} ms · {format_rate(rate(g))} · "
            f"{g.completion_tokens} tokens{est}")
    elif isinstance(event, ModelFailed):
        err(f"\n{event.alias} failed: {event.message}")
    elif isinstance(event, EscalationDecided) and event.escalate:
        where = "before drafting" if event.before_draft else "after the draft"
        verb = "escalate" if event.applied else "would escalate (not applied)"
        click.echo(f"\n\n[{verb} → {event.target} {where}: {'; '.join(event.reasons)}]\n", err=not event.applied)


def answer_json(answer: Answer) -> dict[str, object]:
    """The `rag ask --json` object."""
    return {
        "answer": answer.text,
        "model": answer.model,
        "model_id": answer.model_id,
        "backend": answer.backend,
        "mode": answer.mode,
        "escalated": answer.escalated,
        "reasons": list(answer.reasons),
        "sources": [
            {"number": r.number, "path": r.passage.chunk.source, "chunk": r.passage.chunk.index,
             "score": round(r.passage.score, 4), "location": r.passage.chunk.location}
            for r in answer.sources
        ],
        "cited": list(answer.cited),
        "timings_ms": dict(answer.timings_ms),
        "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                  "estimated": answer.usage_estimated},
        "cost_usd": answer.cost_usd,
        "draft": answer.draft,
        "note": answer.note,
        "grounded": answer.grounded,
    }


@cli.command()
@click.argument("prompt", required=False, envvar="COMPARE_PROMPT")
@click.option("--rag", "grounded", is_flag=True, help="Answer from the corpus, with the chat's retrieval and prompt.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def compare(prompt: str | None, grounded: bool, as_json: bool) -> None:
    """Both models on one PROMPT (or COMPARE_PROMPT), side by side: latency, first token, tokens, cost, answers."""
    from rag.bench.compare import DEFAULT_PROMPT, compare_json, compare_text

    settings = _settings()
    text = prompt or DEFAULT_PROMPT
    columns = asyncio.run(_compare(settings, text, grounded))
    click.echo(compare_json(text, columns, grounded) if as_json else compare_text(columns))


async def _compare(settings: Settings, prompt: str, grounded: bool) -> tuple[Any, ...]:
    from rag.bench.compare import plain_columns
    from rag.runtime import build_services
    from rag.types import Comparison, Kind

    services = build_services(settings)
    try:
        if grounded:
            await services.retriever.refresh()
            async for event in services.pipeline.compare(prompt, (), services.options):
                if isinstance(event, Comparison):
                    return event.columns
            raise click.ClickException("the comparison ended without a result")
        resolution = await services.directory.resolve()
        roles: tuple[tuple[Kind, str], ...] = (("small", settings.small_model), ("large", settings.large_model))
        models = [(kind, name, services.directory.model(r) if (r := resolution.get(kind)) else None) for kind, name in roles]
        return await plain_columns(models, prompt, services.options)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        await services.aclose()


@cli.command()
@click.option("--no-request", is_flag=True, help="Only discover; do not send a test request to each model.")
def doctor(no_request: bool) -> None:
    """What the app can see: endpoints, model ids, reachability, and which features each server supports."""
    settings = _settings()
    ok = asyncio.run(_doctor(settings, not no_request))
    sys.exit(0 if ok else 1)


async def _doctor(settings: Settings, request: bool) -> bool:
    from rag.llm.discovery import HOW_TO_CONNECT, ModelDirectory
    from rag.llm.tokens import get_tokenizer

    tokenizer = get_tokenizer()
    click.echo(f"tokenizer: {tokenizer.name}" + ("" if tokenizer.exact else " (approximate: o200k_base is not cached offline)"))
    configured = settings.base_url or "not set (discovering)"
    click.echo(f"RAG_BASE_URL / FOUNDRY_LOCAL_ENDPOINT: {configured}")
    healthy = True
    if settings.engine == "opensearch":
        healthy = await asyncio.to_thread(_search_health, settings)
    directory = ModelDirectory(settings, tokenizer)
    resolution = await directory.resolve()
    for server in resolution.servers:
        loaded = f"; loaded: {', '.join(server.loaded)}" if server.loaded else ""
        click.echo(f"server: {server.name} at {server.base_url} (found via {server.source}); models: "
                   f"{', '.join(server.models) or 'none'}{loaded}")
    for problem in resolution.problems:
        click.echo(f"problem: {problem}")
    for kind in ("small", "large"):
        resolved = resolution.get(kind)
        alias = settings.small_model if kind == "small" else settings.large_model
        if resolved is None:
            click.echo(f"{kind} model {alias}: NOT FOUND")
            healthy = False
            continue
        click.echo(f"{kind} model {alias} -> {resolved.model_id} at {resolved.server.base_url}")
        if not request:
            continue
        model = directory.model(resolved)
        messages = [{"role": "user", "content": "Reply with one short sentence: what is 2 + 2?"}]
        budget = settings.large_max_tokens if kind == "large" else 64
        try:
            generation = None
            async for item in model.stream(messages, budget, 0.0, logprobs=True):  # report whether the server has them
                if isinstance(item, Generation):
                    generation = item
            assert generation is not None
        except RagError as exc:
            click.echo(f"  request failed: {exc}")
            healthy = False
            continue
        click.echo(
            f"  streaming: yes · first token {generation.first_token_ms:.0f} ms · {format_rate(rate(generation))}\n"
            f"  usage reported: {'no (counted with tiktoken)' if generation.usage_estimated else 'yes'}\n"
            f"  logprobs: {'yes' if generation.mean_logprob is not None else 'no'}\n"
            f"  reasoning: {generation.reasoning_format or 'none seen'}"
        )
    await directory.aclose()
    if not resolution.servers:
        click.echo("\n" + HOW_TO_CONNECT.replace("`", ""))
    return healthy


def _search_health(settings: Settings) -> bool:
    """One line on the search server (RAG_ENGINE=opensearch): reachable, where, how many chunks."""
    from rag.index.analysis import Analyzer
    from rag.index.opensearch import OpenSearchIndex
    from rag.runtime import opensearch_options

    index = OpenSearchIndex(Analyzer(), opensearch_options(settings))
    try:
        click.echo(f"search: {index.health()}")
    except RagError as exc:
        click.echo(f"search: UNREACHABLE: {exc}")
        return False
    return True


# --- bench --------------------------------------------------------------------------------------------


@cli.group()
def bench() -> None:
    """Benchmarks; results belong in BENCHMARKS.md."""


@bench.command("retrieval")
@click.option("--dataset", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")
@click.option("--engine", type=click.Choice([*ENGINES, "opensearch"]), help="Override RAG_ENGINE.")
@click.option("--scale", type=click.IntRange(1), help="Replicate the corpus (perturbed copies) to N chunks.")
@click.option("--split", default="test", show_default=True, help="Which qrels file to evaluate.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--index", "index_name", help="OpenSearch only: the index to fill (default: a new rag-bench-... one, "
              "deleted afterwards).")
def bench_retrieval(dataset: Path, engine: str | None, scale: int | None, split: str, as_json: bool,
                    index_name: str | None) -> None:
    """nDCG@10, Recall@100, index time, query latency p50/p95, queries/s and peak memory (with
    --engine opensearch: also the indexing rate and the cluster's heap; the index is a fresh one)."""
    from rag.beir import load_beir
    from rag.bench.retrieval import report_json, report_text, run_retrieval_bench

    settings = _settings(engine=engine)
    try:
        data = load_beir(dataset, split)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.engine == "opensearch":
        _bench_opensearch(settings, data, scale, as_json, index_name)
        return
    report = run_retrieval_bench(data, settings.engine, settings.bm25_k1, settings.bm25_b, scale,
                                 title_weight=settings.title_weight)
    click.echo(report_json(report) if as_json else report_text(report))


def _bench_opensearch(settings: Settings, data: BeirDataset, scale: int | None, as_json: bool,
                      index_name: str | None) -> None:
    import dataclasses
    import uuid

    from rag.bench.retrieval import report_text, run_opensearch_bench
    from rag.runtime import opensearch_options

    name = index_name or f"rag-bench-{uuid.uuid4().hex[:8]}"
    options = dataclasses.replace(opensearch_options(settings), index=name)
    total = scale or len(data.docs)
    with click.progressbar(length=total, label=f"indexing into {name}", file=sys.stderr) as bar:
        done = [0]

        def progress(n: int, _total: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        try:
            report = run_opensearch_bench(data, options, scale, progress, top_k=settings.top_k)
        except RagError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            if index_name is None:
                _drop_indexes(options)
    if as_json:
        extra = {k: v for k, v in dataclasses.asdict(report).items() if k != "retrieval"}
        click.echo(json.dumps({**dataclasses.asdict(report.retrieval), **extra}))
        return
    click.echo(report_text(report.retrieval))
    click.echo(f"  indexing {report.chunks_per_s:,.0f} chunks/s   cluster heap in use {report.server_heap_mb:,.0f} MB\n"
               f"  a question as the app asks it (top {settings.top_k} and support): p50 {report.app_p50_ms:.1f} ms, "
               f"p95 {report.app_p95_ms:.1f} ms"
               + (f"; bm25s in this run: p50 {report.bm25s_app_p50_ms:.2f} ms, p95 {report.bm25s_app_p95_ms:.2f} ms"
                  if report.bm25s_app_p50_ms is not None else "") + f"\n  {report.server}")


def _drop_indexes(options: OpenSearchOptions) -> None:
    from rag.index.opensearch import connect

    client = connect(options)
    client.indices.delete(index=f"{options.index},{options.index}-documents", ignore_unavailable=True)


def _sizes(text: str) -> list[int]:
    """'1000,10000' -> [1000, 10000]; anything else is a usage error naming --sizes."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{text!r}: give positive whole numbers separated by commas, e.g. 500,2000", param_hint="--sizes")
    return sizes


@bench.command("languages")
@click.option("--corpus", "corpus_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The documents (e.g. the seed pages, with or without the bundled corpus).")
@click.option("--questions", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines: lang, question, sections (tests/data/seed_questions.jsonl).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per language.")
def bench_languages(corpus_dir: Path, questions: Path, as_json: bool) -> None:
    """Hit@1 and hit@3 of the right section per language of a question set."""
    from rag.bench.languages import read_questions, section_hits

    try:
        results = section_hits(corpus_dir, read_questions(questions))
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
        return
    for r in results:
        click.echo(f"{r.language}: {r.questions} questions · hit@1 {r.hit_at_1:.2f} · hit@3 {r.hit_at_3:.2f}")
        for miss in r.misses:
            click.echo(f"    not first: {miss}")


@bench.command("follow-ups")
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines: previous, question, follow_up, lang [default: the shipped rag/data/follow_ups.jsonl].")
@click.option("--corpus", "corpus_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The documents to retrieve from [default: the bundled corpus].")
@click.option("--standalone", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Unrelated questions (one per line, or a BEIR queries.jsonl): each after the one before must read as new.")
@click.option("--hostile", is_flag=True,
              help="Instead: time reading long repeated messages at 5,000 and 20,000 repeats (linear: x4).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def bench_follow_ups(pairs: Path | None, corpus_dir: Path | None, standalone: Path | None, hostile: bool, as_json: bool) -> None:
    """How many question pairs are read right (follow-up or new), and what a follow-up retrieves."""
    from rag.bench import follow_ups

    if hostile:
        timings = follow_ups.hostile()
        if as_json:
            click.echo(json.dumps([{**asdict(t), "growth": round(t.growth, 2)} for t in timings], indent=2, ensure_ascii=False))
            return
        click.echo(follow_ups.render_hostile(timings))
        return
    try:
        report = follow_ups.run_follow_up_bench(follow_ups.read_pairs(pairs), corpus_dir)
        alone = follow_ups.standalone(follow_ups.read_questions(standalone)) if standalone is not None else None
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        extra = {"standalone": {"right": alone[0].right, "total": alone[0].total, "read_as_follow_ups": alone[1]}} if alone else {}
        click.echo(json.dumps({**asdict(report), **extra}, indent=2, ensure_ascii=False))
        return
    click.echo(follow_ups.render(report))
    if alone is not None:
        click.echo(f"unrelated questions read as new: {alone[0].right}/{alone[0].total} ({alone[0].rate:.1%})")
        for question in alone[1]:
            click.echo(f"  read as a follow-up: {question!r}")


@bench.command("models")
@click.option("--models", envvar="BENCH_MODELS", help="Comma-separated aliases or ids [BENCH_MODELS; default: both models].")
@click.option("--rounds", envvar="BENCH_ROUNDS", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="Measured requests per model, after one warm-up [BENCH_ROUNDS].")
@click.option("--prompt", envvar="BENCH_PROMPT", help="The prompt [BENCH_PROMPT].")
@click.option("--stream/--no-stream", envvar="BENCH_STREAM", default=True, show_default=True,
              help="Stream (first-token time measured) or not [BENCH_STREAM=true|false].")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(1, 65536))
@click.option("--json", "as_json", is_flag=True, help="One JSON object keyed by model.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per model.")
def bench_models(models: str | None, rounds: int, prompt: str | None, stream: bool, max_tokens: int, as_json: bool,
                 as_csv: bool) -> None:
    """Latency (mean, p50, p95, max), first token, tokens/s and tokens of each model on one prompt."""
    from rag.bench.models import DEFAULT_PROMPT, report_csv, report_json, report_text

    settings = _settings()
    names = [m.strip() for m in (models or f"{settings.small_model},{settings.large_model}").split(",") if m.strip()]
    reports = asyncio.run(_bench_models(settings, names, rounds, prompt or DEFAULT_PROMPT, stream, max_tokens))
    click.echo(report_json(reports) if as_json else report_csv(reports) if as_csv else report_text(reports))


async def _bench_models(settings: Settings, names: list[str], rounds: int, prompt: str, stream: bool,
                        max_tokens: int) -> list[Any]:
    from rag.bench.models import run_models_bench
    from rag.llm.discovery import ModelDirectory
    from rag.llm.tokens import get_tokenizer

    directory = ModelDirectory(settings, get_tokenizer())
    try:
        resolution = await directory.resolve()
        try:
            models = [(name, directory.model(resolution.named(name, "bench", settings.api_key))) for name in names]
        except RagError as exc:
            raise click.ClickException(str(exc)) from exc
        with click.progressbar(length=len(models) * (rounds + 1), label="requests", file=sys.stderr) as bar:
            return await run_models_bench(models, rounds, prompt, stream, max_tokens, progress=lambda: bar.update(1))
    finally:
        await directory.aclose()


@bench.command("ingest")
@click.option("--sizes", default="1000,10000,50000", show_default=True, help="Background corpus sizes, in chunks.")
@click.option("--pdf-pages", default=100, show_default=True, type=click.IntRange(1))
@click.option("--markdown-bytes", default=1_000_000, show_default=True, type=click.IntRange(1000))
@click.option("--engine", type=click.Choice(ENGINES), help="Override RAG_ENGINE.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per size.")
def bench_ingest(sizes: str, pdf_pages: int, markdown_bytes: int, engine: str | None, as_json: bool) -> None:
    """Upload-to-searchable time for a PDF and a Markdown file, as the corpus grows."""
    from rag.bench.ingest import report_json, report_text, run_ingest_bench

    rows = run_ingest_bench(_settings(engine=engine), _sizes(sizes), pdf_pages, markdown_bytes)
    click.echo(report_json(rows) if as_json else report_text(rows))


@bench.command("ui")
@click.option("--sizes", default="500,2000,6000", show_default=True, help="Answer lengths in tokens.")
@click.option("--rate", default=500.0, show_default=True, help="Tokens per second from the fake server.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1, 10))
@click.option("--conversation", type=click.IntRange(1, 200),
              help="Instead: N answers in one conversation, the app beside bare Chainlit (first text and complete).")
@click.option("--mode", type=click.Choice(["small", "auto", "large", "compare"]), default="small", show_default=True,
              help="With --conversation: the app's mode (compare: side by side, chosen in the chat settings).")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="With --conversation: write an SVG chart.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
def bench_ui(sizes: str, rate: float, repeats: int, conversation: int | None, mode: str, chart: Path | None,
             as_json: bool) -> None:
    """Rendering lag in Chromium: from the server's last token to the whole answer on screen; with
    --conversation, whether answer N appears as fast as answer 1, against bare Chainlit in the same run."""
    if conversation is not None:
        from rag.bench import conversation as bench_conversation

        timings = bench_conversation.run_conversation_bench(conversation, mode=mode)
        if chart is not None:
            chart.write_text(bench_conversation.chart_svg(timings), encoding="utf-8")
        click.echo(bench_conversation.report_json(timings) if as_json else bench_conversation.report_text(timings))
        return
    from rag.bench.ui import report_json, report_text, run_ui_bench

    rows = run_ui_bench(_sizes(sizes), rate, repeats)
    click.echo(report_json(rows) if as_json else report_text(rows))


@bench.command("load")
@click.option("--sessions", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--questions", default=5, show_default=True, type=click.IntRange(1, 5))
@click.option("--history/--no-history", default=True, show_default=True, help="Keep conversations (SQLite), as `make run` does.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def bench_load(sessions: int, questions: int, history: bool, as_json: bool) -> None:
    """Concurrent chat sessions through Chainlit's websocket against the real app and a paced fake server."""
    from rag.bench.load import report_json, report_text, run_load_bench

    report = run_load_bench(sessions, questions, history)
    click.echo(report_json(report) if as_json else report_text(report))
    if report.answered != report.expected or report.isolation_violations or report.wrong_mode_answers or report.database_locked:
        sys.exit(1)


@bench.command("corpus")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A BEIR folder: one file per document; two `rag search` runs, question vs engine time.")
@click.option("--chunks", help="Comma-separated synthetic corpus sizes: upload to searchable, start unchanged.")
@click.option("--engine", type=click.Choice(ENGINES), help="Override RAG_ENGINE.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def bench_corpus(dataset: Path | None, chunks: str | None, engine: str | None, as_json: bool) -> None:
    """A lasting corpus: second start, a question's retrieval, upload to searchable, start with it unchanged."""
    from rag.bench.corpus import FolderRow, ScaleRow, report_json, report_text, run_folder_bench, run_scale_bench

    settings = _settings(engine=engine)
    rows: list[FolderRow | ScaleRow] = []
    if dataset is not None:
        rows.append(run_folder_bench(settings, dataset))
    for size in _sizes(chunks) if chunks else []:
        rows.append(run_scale_bench(settings, size))
    click.echo(report_json(rows) if as_json else report_text(rows))


@bench.command("history")
@click.option("--questions", default=25, show_default=True, type=click.IntRange(1, 500), help="Questions in the conversation.")
@click.option("--resumes", default=5, show_default=True, type=click.IntRange(1, 20), help="Times to reopen it (with --beside-bare: as many of bare Chainlit's, in turn).")
@click.option("--history/--no-history", default=True, show_default=True, help="Off: time the answers only, for comparison.")
@click.option("--beside-bare", is_flag=True, help="Bare Chainlit with its own data layer does the same, in the same run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def bench_history(questions: int, resumes: int, history: bool, beside_bare: bool, as_json: bool) -> None:
    """Reopen a stored conversation in Chromium: time to every answer on screen (needs /usr/bin/chromium)."""
    from rag.bench.history import report_json, report_text, run_history_bench

    report = run_history_bench(questions, resumes, history, bare=beside_bare)
    click.echo(report_json(report) if as_json else report_text(report))


@bench.command("overhead")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(1))
@click.option("--tokens", default=100, show_default=True, type=click.IntRange(2))
@click.option("--ttft-ms", default=200.0, show_default=True, help="The fake server's time to first token.")
@click.option("--rate", default=100.0, show_default=True, help="The fake server's tokens per second.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def bench_overhead(runs: int, tokens: int, ttft_ms: float, rate: float, as_json: bool) -> None:
    """Time to first token and total time: the pipeline against a bare openai client, same fake server."""
    from rag.bench.overhead import main_async, report_json, report_text

    report = main_async(_settings(), runs, tokens, ttft_ms, rate)
    click.echo(report_json(report) if as_json else report_text(report))


cli.add_command(users)
cli.add_command(export)
cli.add_command(calibrate)
cli.add_command(eval_command)
bench.add_command(bench_support)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
