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
@_DATASET
@click.option("--split", default="train", show_default=True, help="Which judged queries to fit on (never test).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the coefficients here (RAG_SUPPORT_MODEL reads them); default: print them.")
def calibrate(dataset: Path, split: str, out: Path | None) -> None:
    """Fit the `support` model on a data set's train queries: each query with and without its relevant
    documents, and the even-numbered shipped everyday questions. Prints the AUROCs on what it fitted."""
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
    if out is None:
        click.echo(model.to_json(), nl=False)
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(model.to_json(), encoding="utf-8")
    tmp.replace(out)
    click.echo(f"wrote {out}", err=True)


@click.command("support")
@_DATASET
@click.option("--split", default="test", show_default=True, help="Which judged queries to measure on.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {test: {signal: AUROC}} and counts.")
def bench_support(dataset: Path, split: str, as_json: bool) -> None:
    """AUROC of every support signal (support, top score, coverage, ...) in the near-miss and off-topic
    tests, with the support model RAG_SUPPORT_MODEL names (default: the shipped one), and what the
    policy's thresholds do on these questions."""
    from rag.beir import load_beir
    from rag.policy.calibration import aurocs, collect, everyday_questions, format_report, group_counts, policy_notes
    from rag.index.support import SupportModel, shipped_model

    settings = _settings()
    try:
        data = load_beir(dataset, split)
        model = SupportModel.load(settings.support_model) if settings.support_model else shipped_model()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    everyday = everyday_questions("test" if split == "test" else "train")
    examples = collect(data, everyday, settings.bm25_k1, settings.bm25_b, settings.title_weight, model,
                       progress=_progress("bench support"))
    results, counts = aurocs(examples), group_counts(examples)
    notes = policy_notes(examples, settings.off_topic_support, settings.min_support)
    if as_json:
        click.echo(json.dumps({"dataset": dataset.name, "split": split, "counts": counts, "auroc": results,
                               "model": model.fitted_on, "notes": notes}, indent=2))
        return
    click.echo(format_report(results, f"{dataset.name} {split} (model: {model.fitted_on or 'custom'})", counts, notes))
