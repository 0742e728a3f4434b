"""Support calibrated on the user's corpus with no labels (issue 24): pseudo-questions, masked near misses,
everyday questions; the shipped prior for tiny corpora; kept beside the index and redone when the corpus
changes enough."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.analysis import Analyzer
from rag.policy.corpus_calibration import (
    MIN_DOCUMENTS,
    CorpusCalibration,
    calibrate_corpus,
    pseudo_questions,
    too_small,
)
from rag.runtime import build_retriever, calibration_store, keep_calibrated
from rag.types import Chunk
from tests.conftest import REPO

SCIFACT = REPO.parent / "shared" / "data" / "beir" / "scifact"
THRESHOLDS = {"off_topic_support": 0.03, "skip_draft_support": 0.15, "min_support": 0.4}
TOPICS = ["volcano lava magma eruption crater", "violin bow string orchestra concerto", "glacier ice moraine crevasse meltwater",
          "compiler parser token grammar bytecode", "orchid petal pollinator nectar bloom",
          "tax deduction invoice receipt audit", "satellite orbit perigee telemetry antenna",
          "bread yeast dough proofing oven", "protein enzyme substrate catalysis binding",
          "railway signal junction timetable platform"]


def _documents(count: int) -> dict[tuple[str, str], tuple[Chunk, ...]]:
    """A corpus of `count` documents, three chunks each, on varied topics with specific facts."""
    out = {}
    for d in range(count):
        words = TOPICS[d % len(TOPICS)].split()
        chunks = []
        for c in range(3):
            text = (f"The {words[0]} survey {d} recorded {words[1]} readings near site {d * 7 + c}. "
                    f"Each {words[2]} sample was compared with the {words[3]} baseline, and the {words[4]} "
                    f"index rose by {c + d} points during the {words[(c + 1) % 5]} season of year {2000 + d}.")
            chunks.append(Chunk(f"doc{d}.md", c, text, c * 300, c * 300 + len(text), f"Report {d}",
                                f"Report {d} › {words[c].title()} findings"))
        out[(f"doc{d}.md", hashlib.sha256(str(d).encode()).hexdigest())] = tuple(chunks)
    return out


def test_pseudo_questions_are_short_deterministic_and_drawn_from_their_document() -> None:
    documents = {key[0]: chunks for key, chunks in _documents(30).items()}
    first = pseudo_questions(documents, Analyzer(), 60)
    assert first == pseudo_questions(documents, Analyzer(), 60) and len(first) == 60
    assert len({source for _, source in first}) >= 25  # spread over the documents
    analyzer = Analyzer()
    from rag.policy.corpus_calibration import _TEMPLATES

    wrapper = {t for template in _TEMPLATES for t in analyzer.terms(template.format(""))}
    corpus_terms = {t for chunks in documents.values() for c in chunks
                    for t in analyzer.terms(c.text + " " + (c.heading or ""))}
    from_source = []
    for question, source in first:
        words = question.rstrip("?").split()
        assert 2 <= len(words) <= 17
        own = {t for c in documents[source] for t in analyzer.terms(c.text + " " + (c.heading or ""))}
        terms = [t for t in analyzer.terms(question) if t not in wrapper]
        assert terms and sum(t in corpus_terms for t in terms) >= len(terms) / 2, (question, source)
        from_source.append(sum(t in own for t in terms) / len(terms))
    # Mostly the passage's own words, some from elsewhere (people paraphrase), never none of the passage's.
    assert min(from_source) > 0 and sum(from_source) / len(from_source) >= 0.5


def test_a_tiny_corpus_keeps_the_shipped_prior() -> None:
    assert too_small(MIN_DOCUMENTS - 1, 500) and too_small(100, 10) and not too_small(MIN_DOCUMENTS, 60)
    assert calibrate_corpus(_documents(MIN_DOCUMENTS - 1), Analyzer(), 1.2, 0.75, 0.2, THRESHOLDS) is None


def test_a_corpus_of_its_own_is_calibrated_and_separates_everyday_questions() -> None:
    calibration = calibrate_corpus(_documents(40), Analyzer(), 1.2, 0.75, 0.2, THRESHOLDS, count=120)
    assert calibration is not None and calibration.model.fitted_on.startswith("this corpus: ")
    assert calibration.documents == 40 and calibration.chunks == 120 and calibration.questions == 120
    assert calibration.near_misses == 120 and calibration.off_topic > 50
    assert calibration.auroc_off_topic > 0.9
    assert calibration.below["off_topic_support"]["answerable"] <= 0.05  # real questions are not refused
    assert calibration.model.topic is not None  # the on-topic model the off-topic threshold reads
    again = calibrate_corpus(_documents(40), Analyzer(), 1.2, 0.75, 0.2, THRESHOLDS, count=120)
    assert again is not None and again.model == calibration.model  # deterministic
    restored = CorpusCalibration.from_json(calibration.to_json())
    assert restored.model == calibration.model and not restored.stale(130) and restored.stale(150)


def test_scifact_without_labels_transfers_to_its_test_queries() -> None:
    from rag.beir import load_beir
    from rag.policy.calibration import aurocs, collect, everyday_questions

    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {SCIFACT}")
    data = load_beir(SCIFACT, "test")
    documents = {(i, hashlib.sha256(t.encode()).hexdigest()): (Chunk(i, 0, t, 0, len(t), title),)
                 for i, title, t in data.docs}
    calibration = calibrate_corpus(documents, Analyzer(), 1.2, 0.75, 0.2, THRESHOLDS)
    assert calibration is not None
    examples = collect(data, everyday_questions("test"), 1.2, 0.75, 0.2, calibration.model)
    results = aurocs(examples)
    refused = [e.signals.topical < 0.03 for e in examples if e.group == "answerable"]
    caught = [e.signals.topical < 0.03 for e in examples if e.group == "off_topic"]
    assert results["off_topic"]["topical"] >= 0.95 and results["near_miss"]["support"] >= 0.70
    best_single = max(v for k, v in results["near_miss"].items() if k not in ("support", "topical"))
    assert results["near_miss"]["support"] >= best_single - 0.02
    assert sum(refused) / len(refused) <= 0.01 and sum(caught) / len(caught) >= 0.60


async def test_the_app_calibrates_in_the_background_keeps_it_and_redoes_it_when_the_corpus_grows(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for (source, _), chunks in _documents(30).items():
        (corpus / source).write_text("\n\n".join(f"## {c.heading.split(' › ')[-1] if c.heading else ''}\n\n{c.text}" for c in chunks))
    settings = Settings(corpus_dir=corpus, data_dir=tmp_path / "data", chunk_tokens=48, chunk_overlap=4, _env_file=None)
    retriever = build_retriever(settings)
    retriever.warm_up()
    assert retriever.index.support_model is None  # the shipped prior until calibrated
    task = asyncio.create_task(keep_calibrated(settings, retriever, every_s=0.05))
    store = calibration_store(settings)
    for _ in range(600):
        if store.path.exists() and retriever.index.support_model is not None:
            break
        await asyncio.sleep(0.05)
    model = retriever.index.support_model
    assert model is not None and model.fitted_on.startswith("this corpus")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    first = store.load()
    assert first is not None
    result = await retriever.search("volcano survey readings", 3)
    assert result.calibration.startswith("calibrated on this corpus")
    for d in range(30, 60):  # the corpus doubles: calibrated again
        (corpus / f"more{d}.md").write_text(f"# More {d}\n\nThe glacier moraine study {d} counted {d} crevasses.")
    await retriever.refresh()
    for _ in range(600):
        latest = store.load()
        if latest is not None and latest.created != first.created:
            break
        await asyncio.sleep(0.05)
    assert latest is not None and latest.documents == 60
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
