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
