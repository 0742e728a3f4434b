"""`rag calibrate` and `rag bench support`: fit the support model, and measure every support signal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from rag.config import Settings, load_settings
from rag.errors import RagError

_DATASET = click.option("--dataset", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")


def _settings() -> Settings:
    try:
        return load_settings()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc


def _progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if sys.stderr.isatty() and (done % 25 == 0 or done == total):
            click.echo(f"\r{label}: {done}/{total} questions", err=True, nl=done == total)
    return show


@click.command()
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A BEIR folder to fit on its train queries (labels). Without it: the configured corpus, no labels.")
@click.option("--split", default="train", show_default=True, help="Which judged queries to fit on (never test).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the coefficients here (RAG_SUPPORT_MODEL reads them); default: print them.")
def calibrate(dataset: Path | None, split: str, out: Path | None) -> None:
    """Fit the `support` model. Without --dataset, on the configured corpus itself, with no labels
    (pseudo-questions drawn from it, the same with their document masked, everyday questions), as the app
    does in the background; it prints what it found and keeps it for the app. With --dataset, on a data
    set's train queries: each with and without its relevant documents, and the even-numbered shipped
    everyday questions."""
    if dataset is None:
        _calibrate_corpus(out)
        return
    from rag.beir import load_beir
    from rag.policy.calibration import aurocs, collect, everyday_questions, fit, format_report, group_counts
    from rag.index.support import predictor_values, shipped_model

    if split == "test":
        raise click.UsageError("fit on train queries only: the test split is for `rag bench support`")
    settings = _settings()
    try:
        data = load_beir(dataset, split)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    examples = collect(data, everyday_questions("train"), settings.bm25_k1, settings.bm25_b, settings.title_weight,
                       shipped_model(), progress=_progress("calibrate"))
    model = fit(examples, f"{dataset.name} {split}: {group_counts(examples)}")
    refitted = [replace(e, signals=replace(e.signals, support=model.predict(predictor_values(e.signals))))
                for e in examples]
    click.echo(format_report(aurocs(refitted), f"fitted on {dataset.name} {split}", group_counts(refitted)), err=True)
    _write(model.to_json(), out)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    click.echo(f"wrote {out}", err=True)


def _calibrate_corpus(out: Path | None) -> None:
    """`rag calibrate` on the configured corpus: what the app does after indexing, in the foreground."""
    from rag.policy.corpus_calibration import MIN_CHUNKS, MIN_DOCUMENTS
    from rag.runtime import build_retriever, calibration_store, calibrate_now

    settings = _settings()
    retriever = build_retriever(settings)
    try:
        retriever.warm_up()
        calibration = calibrate_now(settings, retriever)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    if calibration is None:
        click.echo(f"{settings.corpus_dir} is too small to calibrate on (fewer than {MIN_DOCUMENTS} documents or "
                   f"{MIN_CHUNKS} chunks): support uses the shipped prior (fitted on SciFact).")
        return
    calibration_store(settings).save(calibration)
    click.echo(calibration.summary() + f"; {calibration.seconds:.1f} s")
    names = {"off_topic_support": "refused as off topic", "skip_draft_support": "draft skipped",
             "min_support": "escalated"}
    for name, shares in calibration.below.items():
        threshold = getattr(settings, name)
        click.echo(f"  below {name.upper().replace('_', ' ')} {threshold:.0%} ({names[name]}): "
                   f"{shares['answerable']:.1%} of pseudo-questions, {shares['near_miss']:.0%} of near misses, "
                   f"{shares['off_topic']:.0%} of everyday questions")
    if out is not None:
        _write(calibration.model.to_json(), out)


@click.command("support")
@_DATASET
@click.option("--split", default="test", show_default=True, help="Which judged queries to measure on.")
@click.option("--calibration", type=click.Choice(["corpus", "shipped"]), default="corpus", show_default=True,
              help="corpus: calibrate on the data set's documents with no labels first, as the app does on "
                   "yours; shipped: the model fitted on SciFact (or RAG_SUPPORT_MODEL).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {test: {signal: AUROC}} and counts.")
def bench_support(dataset: Path, split: str, calibration: str, as_json: bool) -> None:
    """AUROC of every support signal (support, top score, coverage, ...) in the near-miss and off-topic
    tests, and what the policy's thresholds do on these questions: by default with support calibrated on
    the data set's own documents (no labels), as the app calibrates on yours."""
    import hashlib

    from rag.beir import load_beir
    from rag.index.analysis import Analyzer
    from rag.index.support import SupportModel, shipped_model
    from rag.policy.calibration import aurocs, collect, everyday_questions, format_report, group_counts, policy_notes
    from rag.policy.corpus_calibration import calibrate_corpus
    from rag.types import Chunk

    settings = _settings()
    try:
        data = load_beir(dataset, split)
        model = SupportModel.load(settings.support_model) if settings.support_model else shipped_model()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    found = ""
    if calibration == "corpus" and settings.support_model is None:
        analyzer = Analyzer()
        documents = {(i, hashlib.sha256(text.encode()).hexdigest()): (Chunk(i, 0, text, 0, len(text), title),)
                     for i, title, text in data.docs}
        fitted = calibrate_corpus(documents, analyzer, settings.bm25_k1, settings.bm25_b, settings.title_weight,
                                  {"off_topic_support": settings.off_topic_support})
        if fitted is not None:
            model, found = fitted.model, f"{fitted.summary()}; {fitted.seconds:.1f} s"
    everyday = everyday_questions("test" if split == "test" else "train")
    examples = collect(data, everyday, settings.bm25_k1, settings.bm25_b, settings.title_weight, model,
                       progress=_progress("bench support"))
    results, counts = aurocs(examples), group_counts(examples)
    notes = ([found] if found else []) + policy_notes(examples, settings.off_topic_support, settings.min_support)
    if as_json:
        click.echo(json.dumps({"dataset": dataset.name, "split": split, "counts": counts, "auroc": results,
                               "model": model.fitted_on, "notes": notes}, indent=2))
        return
    click.echo(format_report(results, f"{dataset.name} {split} (model: {model.fitted_on or 'custom'})", counts, notes))
