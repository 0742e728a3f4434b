"""`rag eval`: an evaluation set through the pipeline in each mode; a Markdown report and a latency chart."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import click

from rag.config import Settings, load_settings
from rag.errors import RagError
from rag.types import Mode

MODES = ("auto", "small", "large")


@click.command("eval")
@click.option("--set", "set_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines: question, facts, sources, answerable (default: the set for the bundled corpus).")
@click.option("--modes", default=",".join(MODES), show_default=True, help="Comma-separated: auto, small, large.")
@click.option("--judge", "judge_name", help="A model id or alias to score answers 1-5 (coherence, factuality, conciseness).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-results/eval"),
              show_default=True, help="Folder for report.md and latency.svg.")
@click.option("--json", "as_json", is_flag=True, help="Also print the per-mode figures as one JSON object.")
def eval_command(set_path: Path | None, modes: str, judge_name: str | None, out: Path, as_json: bool) -> None:
    """Each question of the set in each mode, at temperature 0 with a fixed seed: retrieval hit rate, facts
    in the answers, citations, "the documents don't say" on unanswerable questions, escalation, latency per
    stage, blended cost; the headline is quality kept vs cost saved by auto mode against large-only."""
    from rag.eval.questions import load_set

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    if not chosen or any(m not in MODES for m in chosen):
        raise click.BadParameter(f"{modes!r}: choose among {', '.join(MODES)}", param_hint="--modes")
    try:
        settings = load_settings()
        questions = load_set(set_path)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    summaries, report = asyncio.run(_eval(settings, questions, cast(list[Mode], chosen), judge_name, out,
                                          set_path.name if set_path else "the bundled corpus's set"))
    click.echo(f"report: {report}", err=True)
    if as_json:
        click.echo(json.dumps([asdict(s) for s in summaries], indent=2))


async def _eval(settings: Settings, questions: list[Any], modes: list[Mode], judge_name: str | None, out: Path,
                set_name: str) -> tuple[list[Any], Path]:
    from rag.eval.report import headline, latency_svg, markdown, summarise
    from rag.eval.run import run_eval
    from rag.runtime import build_services

    services = build_services(settings)
    try:
        await services.retriever.refresh()
        judge = None
        if judge_name:
            resolution = await services.directory.resolve()
            judge = services.directory.model(resolution.named(judge_name, "judge", settings.api_key))
        try:
            with click.progressbar(length=len(questions) * len(modes), label="answers", file=sys.stderr) as bar:
                records = await run_eval(services.pipeline, services.options, questions, modes, judge,
                                         progress=lambda: bar.update(1))
        finally:
            if judge is not None:
                await judge.aclose()
    except RagError as exc:
        raise click.ClickException(f"judge {exc}" if judge_name and "not served" in str(exc) else str(exc)) from exc
    finally:
        await services.aclose()
    summaries = summarise(records)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "latency.svg").write_text(latency_svg(summaries), encoding="utf-8")
        report = out / "report.md"
        report.write_text(markdown(summaries, records, set_name, settings.top_k, "latency.svg", judge_name),
                          encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    top = headline(summaries)
    if top:
        click.echo(top, err=True)
    return summaries, report
