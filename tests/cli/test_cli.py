import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from rag.fakes.samples import make_encrypted_pdf


@pytest.fixture
def populated(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    (corpus_dir / "ports.md").write_text("# Ports\n\nOllama listens on port 11434 by default.\n\n## LM Studio\n\nPort 1234.")
    (corpus_dir / "locked.pdf").write_bytes(make_encrypted_pdf(["x"], "pw"))
    return corpus_dir


def test_corpus_list_shows_status_and_skip_reason(populated: Path) -> None:
    result = CliRunner().invoke(cli, ["corpus", "list"])
    assert result.exit_code == 0, result.output
    assert "ports.md" in result.output and "markdown" in result.output
    assert "skipped: encrypted PDF (a password is required)" in result.output
    assert "1 documents served, 1 skipped, 2 chunks" in result.output


def test_corpus_list_json(populated: Path) -> None:
    result = CliRunner().invoke(cli, ["corpus", "list", "--json"])
    docs = {d["path"]: d for d in json.loads(result.output)}
    assert docs["ports.md"]["status"] == "ok" and docs["ports.md"]["chunks"] == 2
    assert docs["locked.pdf"]["status"] == "skipped" and "password" in docs["locked.pdf"]["reason"]


def test_search_json_has_passages_and_signals(populated: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "which port does ollama listen on", "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    top = data["passages"][0]
    assert (top["path"], top["chunk"]) == ("ports.md", 0)
    assert top["score"] > 0 and "11434" in top["text"]
    assert set(data["signals"]) >= {"top_score", "margin", "coverage", "weighted_coverage"}


def test_search_text_output_and_engine_override(populated: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "LM Studio port", "--engine", "bm25s"])
    assert result.exit_code == 0, result.output
    assert "[1]" in result.output and "ports.md › Ports › LM Studio" in result.output


def test_invalid_setting_is_one_clear_line(populated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "zero")
    result = CliRunner().invoke(cli, ["search", "x"])
    assert result.exit_code != 0
    assert "Invalid setting RAG_TOP_K" in result.output and "Traceback" not in result.output


def _tiny_beir(root: Path) -> Path:
    docs = [
        ("d1", "Ports", "Ollama listens on port 11434."),
        ("d2", "Studio", "LM Studio serves on port 1234."),
        ("d3", "Models", "phi-4-mini is a small language model."),
    ]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs))
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps(q) for q in [{"_id": "q1", "text": "ollama port"}, {"_id": "q2", "text": "small model"}])
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return root


@pytest.mark.parametrize("engine", ["rank-bm25", "bm25s"])
def test_bench_retrieval_json(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    dataset = _tiny_beir(tmp_path / "beir")
    result = CliRunner().invoke(cli, ["bench", "retrieval", "--dataset", str(dataset), "--engine", engine, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"ndcg_at_10", "recall_at_100", "index_seconds", "p50_ms", "p95_ms", "qps", "engine", "docs", "queries"} <= set(report)
    assert report["engine"] == engine and report["docs"] == 3 and report["queries"] == 2
    assert report["ndcg_at_10"] == 1.0 and report["recall_at_100"] == 1.0
    assert report["p95_ms"] >= report["p50_ms"] > 0


def test_bench_retrieval_scale_adds_perturbed_copies(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    dataset = _tiny_beir(tmp_path / "beir")
    result = CliRunner().invoke(cli, ["bench", "retrieval", "--dataset", str(dataset), "--scale", "30", "--json"])
    assert json.loads(result.output)["docs"] == 30


def test_bench_retrieval_rejects_a_folder_that_is_not_beir(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["bench", "retrieval", "--dataset", str(tmp_path)])
    assert result.exit_code != 0 and "is not a BEIR data set" in result.output


def test_corpus_add_and_remove(populated: Path, tmp_path: Path) -> None:
    good = tmp_path / "Zebra Notes.md"
    good.write_text("# Zebras\n\nZebras have stripes.")
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    result = CliRunner().invoke(cli, ["corpus", "add", str(good), str(bad)])
    assert result.exit_code == 1
    assert "added" in result.stdout and "as uploads/Zebra-Notes-" in result.stdout
    assert f"rejected {bad}: empty file" in result.stderr
    (stored,) = list((populated / "uploads").iterdir())

    again = CliRunner().invoke(cli, ["corpus", "add", str(good)])
    assert again.exit_code == 0 and "already in the corpus" in again.stdout

    refused = CliRunner().invoke(cli, ["corpus", "remove", "ports.md"])
    assert refused.exit_code != 0 and "only uploads can be deleted" in refused.output
    removed = CliRunner().invoke(cli, ["corpus", "remove", stored.name])
    assert removed.exit_code == 0 and not stored.exists()
    missing = CliRunner().invoke(cli, ["corpus", "remove", "nothing.md"])
    assert missing.exit_code != 0 and "no single document named 'nothing.md'" in missing.output
