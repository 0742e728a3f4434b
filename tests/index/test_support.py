"""The support signal: predictors, the shipped model, `rag calibrate` and `rag bench support`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.index.analysis import Analyzer
from rag.cli.main import cli
from rag.errors import ConfigError
from rag.metrics import auroc
from rag.index.search import build_index, search_index
from rag.index.support import PREDICTORS, SupportModel, predictors, shipped_model
from rag.types import Chunk
from tests.conftest import SHARED_DATA

SCIFACT = SHARED_DATA / "beir" / "scifact"


def test_auroc_counts_ties_half_and_matches_a_brute_force_count() -> None:
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1], [2]) == 0.0 and auroc([1, 1], [1]) == 0.5
    rng = random.Random(3)
    pos = [rng.randint(0, 9) for _ in range(40)]
    neg = [rng.randint(0, 7) for _ in range(30)]
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert auroc(pos, neg) == pytest.approx(brute)


def test_predictors_are_scale_free() -> None:
    scores = [9.0, 6.0, 3.0, 2.5, 2.0, 1.0]
    base = predictors(scores, 20.0, 0.5, 0.6, 0.9, 4)
    scaled = predictors([s * 7 for s in scores], 140.0, 0.5, 0.6, 0.9, 4)
    # Every predictor of the shipped model is scale-free; the raw top score is reported too, for models
    # fitted on one corpus (its scale is that corpus's own).
    assert {k: base[k] for k in PREDICTORS} == pytest.approx({k: scaled[k] for k in PREDICTORS})
    assert scaled["top_score"] == 7 * base["top_score"] == 63.0
    assert base["normalized_top"] == pytest.approx(0.45)
    assert base["wig"] == pytest.approx((9 + 6 + 3 + 2.5 + 2) / 5 / 20 / 2)  # top-5 mean / max / sqrt(4)
    assert predictors([], 10.0, 0, 0, 0, 3)["normalized_top"] == 0.0


def test_the_shipped_model_loads_and_is_monotone_in_every_predictor() -> None:
    model = shipped_model()
    assert model.features == PREDICTORS and "train" in model.fitted_on
    assert all(w >= 0 for w in model.weights)  # rag.policy.calibration.fit keeps them so: no wild extrapolation
    low = {name: m - s for name, m, s in zip(model.features, model.mean, model.scale)}
    high = {name: m + s for name, m, s in zip(model.features, model.mean, model.scale)}
    assert 0 <= model.predict(low) < model.predict(high) <= 1
    extreme = {name: m + 1000 * s for name, m, s in zip(model.features, model.mean, model.scale)}
    assert model.predict(extreme) == pytest.approx(model.predict({n: m + 3 * s for n, m, s in zip(
        model.features, model.mean, model.scale)}))  # standardised values are clipped at 3


def test_a_broken_model_file_is_a_clear_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"features": ["nope"], "mean": [0], "scale": [1], "weights": [1], "bias": 0}')
    with pytest.raises(ConfigError, match="unknown predictors"):
        SupportModel.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        SupportModel.load(tmp_path / "missing.json")


def test_support_separates_a_covered_question_from_an_everyday_one() -> None:
    analyzer = Analyzer()
    texts = [f"Ollama serves phi-4-mini on port 11434; document {i} about model servers and ports." for i in range(5)]
    texts += ["BM25 ranks passages by term frequency and inverse document frequency.",
              "Escalation sends weak drafts from phi-4-mini to gpt-oss-20b."]
    chunks = [Chunk(f"d{i}.md", 0, t, 0, len(t), f"Doc {i}") for i, t in enumerate(texts)]
    snapshot = build_index(chunks, analyzer, "rank-bm25", 1.2, 0.75, title_weight=0.2)
    covered = search_index(snapshot, analyzer, "How does BM25 rank passages?", 3).signals
    everyday = search_index(snapshot, analyzer, "How long should I boil an egg?", 3).signals
    assert 0 <= everyday.support < covered.support <= 1
    assert covered.support > 0.5 and everyday.support < 0.05
    assert covered.max_score > covered.top_score > 0 and 0 < covered.normalized_top < 1


def _beir(root: Path) -> Path:
    """A small BEIR folder: 40 documents on distinct topics, train and test questions about them."""
    rng = random.Random(5)
    topics = ["volcano", "glacier", "enzyme", "protein", "neutron", "galaxy", "mitosis", "antibody", "quasar",
              "isotope", "plankton", "coral", "tectonic", "magnet", "photon", "ribosome", "insulin", "comet",
              "fungus", "lichen"]
    filler = "study results measured effect samples data analysis observed levels increase".split()
    docs: list[dict[str, str]] = []
    queries: list[dict[str, str]] = []
    train: list[str] = []
    test: list[str] = []
    for i, topic in enumerate(topics):
        for j in range(2):
            words = [topic] * 3 + [f"{topic}{j}x"] + rng.sample(filler, 6)
            docs.append({"_id": f"d{i}-{j}", "title": f"{topic} {j}", "text": " ".join(words)})
        for j, qrels in ((0, train), (1, test)):
            queries.append({"_id": f"q{i}-{j}", "text": f"What does the {topic} {topic}{j}x study show?"})
            qrels.append(f"q{i}-{j}\td{i}-{j}\t1")
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(train) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(test) + "\n")
    return root


def test_calibrate_is_deterministic_and_its_model_drives_search(tmp_path: Path, corpus_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    dataset = _beir(tmp_path / "beir")
    out = tmp_path / "model.json"
    first = CliRunner().invoke(cli, ["calibrate", "--dataset", str(dataset), "--out", str(out)])
    assert first.exit_code == 0, first.output
    printed = CliRunner().invoke(cli, ["calibrate", "--dataset", str(dataset)])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == json.loads(out.read_text())  # reproducible
    model = SupportModel.load(out)
    assert all(w >= 0 for w in model.weights) and model.fitted_on.startswith("beir train")
    assert "| support |" in first.stderr
    refused = CliRunner().invoke(cli, ["calibrate", "--dataset", str(dataset), "--split", "test"])
    assert refused.exit_code == 2 and "train queries only" in refused.output

    (corpus_dir / "ports.md").write_text("# Ports\n\nOllama listens on port 11434 by default.\n")
    shipped = json.loads(CliRunner().invoke(cli, ["search", "ollama port", "--json"]).stdout)["signals"]
    monkeypatch.setenv("RAG_SUPPORT_MODEL", str(out))
    mine = json.loads(CliRunner().invoke(cli, ["search", "ollama port", "--json"]).stdout)["signals"]
    assert 0 <= shipped["support"] <= 1 and 0 <= mine["support"] <= 1
    expected = model.predict({name: mine[name] for name in PREDICTORS})
    assert mine["support"] == pytest.approx(expected) and mine["support"] != pytest.approx(shipped["support"])

    monkeypatch.setenv("RAG_SUPPORT_MODEL", str(tmp_path / "nothing.json"))
    broken = CliRunner().invoke(cli, ["search", "ollama port"])
    assert broken.exit_code == 1 and "cannot read the support model" in broken.output


def test_bench_support_reports_every_signal_for_both_tests(tmp_path: Path, corpus_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    dataset = _beir(tmp_path / "beir")
    result = CliRunner().invoke(cli, ["bench", "support", "--dataset", str(dataset), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"] == {"answerable": 20, "near_miss": 20, "off_topic": 117}
    for test in ("near_miss", "off_topic"):
        assert set(report["auroc"][test]) >= {"support", "top_score", "coverage", "weighted_coverage", "nqc", "wig"}
        assert all(0 <= v <= 1 for v in report["auroc"][test].values())
    # Each question's own two documents share its rare term: without them nothing covers it.
    assert report["auroc"]["near_miss"]["weighted_coverage"] > 0.9
    text = CliRunner().invoke(cli, ["bench", "support", "--dataset", str(dataset)]).stdout
    assert "| signal | AUROC near miss | AUROC off topic |" in text and "Below the off-topic threshold" in text


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"BEIR SciFact is not at {SCIFACT}")
def test_calibrate_on_scifact_train_reproduces_the_shipped_coefficients(tmp_path: Path, corpus_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["calibrate", "--dataset", str(SCIFACT)])
    assert result.exit_code == 0, result.output
    fitted = SupportModel.from_json(result.stdout)
    shipped = shipped_model()
    assert fitted.features == shipped.features and fitted.fitted_on == shipped.fitted_on
    for a, b in zip((*fitted.mean, *fitted.scale, *fitted.weights, fitted.bias),
                    (*shipped.mean, *shipped.scale, *shipped.weights, shipped.bias)):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-8)
