"""`rag bench ui` end to end with tiny answers: the benchmark itself must keep working."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from tests.browser.conftest import CHROMIUM

pytestmark = pytest.mark.browser


def test_bench_ui_measures_both_views(monkeypatch: pytest.MonkeyPatch, corpus_dir: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["bench", "ui", "--sizes", "40", "--rate", "1000", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["view"], r["tokens"]) for r in rows] == [("single", 40), ("side by side", 40)]
    assert all(0 < r["lag_ms"] < 10_000 for r in rows)


@pytest.mark.parametrize("mode", ["small", "compare"])
def test_bench_ui_conversation_measures_the_app_beside_bare_chainlit(mode: str, tmp_path: Path) -> None:
    """Issue 25's benchmark: a short conversation in each app, every answer timed, a chart written."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    chart = tmp_path / "conversation.svg"
    result = CliRunner().invoke(cli, ["bench", "ui", "--conversation", "2", "--mode", mode, "--chart", str(chart), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(a["app"], a["number"]) for a in report["answers"]] == [
        ("bare Chainlit", 1), ("bare Chainlit", 2), (f"this app ({mode})", 1), (f"this app ({mode})", 2)]
    assert all(0 < a["first_ms"] <= a["complete_ms"] < 60_000 for a in report["answers"])
    assert {s["app"] for s in report["summary"]} == {"bare Chainlit", f"this app ({mode})"}
    assert chart.read_text().startswith("<svg") and "polyline" in chart.read_text()


def test_bench_history_reopens_in_the_app_and_in_bare_chainlit() -> None:
    """Issue 25, point 4: reopening a stored conversation, the app beside bare Chainlit with its own data
    layer, in one run."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    result = CliRunner().invoke(cli, ["bench", "history", "--questions", "2", "--resumes", "2", "--beside-bare", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["questions"] == 2 and len(report["resume_runs_ms"]) == len(report["bare_resume_runs_ms"]) == 2
    pairs = sorted(a / b for a, b in zip(report["resume_runs_ms"], report["bare_resume_runs_ms"]))
    assert report["resume_vs_bare"] == round((pairs[0] + pairs[1]) / 2, 2)  # each reopening against bare's after it
    assert 0 < report["resume_median_ms"] < 60_000 and 0 < report["bare_resume_median_ms"] < 60_000
    assert 0 < report["bare_answer_p50_ms"] < 60_000
