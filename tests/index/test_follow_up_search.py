"""A follow-up searched with the previous question: its own words at full weight, the previous one's at
EARLIER_WEIGHT, in every engine and field, and counted the same way by the support signals."""

from __future__ import annotations

import numpy as np
import pytest

from rag.index.analysis import Analyzer
from rag.index.search import EARLIER_WEIGHT, build_index, query_terms, search_index
from rag.types import Chunk

TEXTS = [
    "Ollama listens on port 11434. The Ollama port can be changed with OLLAMA_HOST.",  # the previous answer's passage
    "Ollama answers fast on a laptop: speed depends on the model size.",  # Ollama and speed
    "Generation speed: small models are fast, large models are slow.",  # speed only
    "Uploading a PDF adds it to the corpus.",
    "LM Studio serves on port 1234.", "vLLM listens on port 8000.", "Foundry Local picks a free port at start.",
]
CHUNKS = [Chunk(f"doc{i}.md", 0, text, 0, len(text), f"Doc {i}") for i, text in enumerate(TEXTS)]
ANALYZER = Analyzer(language="english")


@pytest.mark.parametrize("engine", ["rank-bm25", "bm25s"])
@pytest.mark.parametrize("title_weight", [0.0, 0.5])
def test_weights_are_exact_sums_in_every_engine(engine: str, title_weight: float) -> None:
    snapshot = build_index(CHUNKS, ANALYZER, engine, 1.2, 0.75, title_weight=title_weight)
    own, earlier = ANALYZER.query_terms("how fast is it"), ANALYZER.query_terms("Which port does Ollama use?")

    def field_scores(terms: list[str]) -> np.ndarray:
        body = snapshot.engine.scores(terms)
        assert body is not None
        titles = snapshot.titles.scores(terms) if snapshot.titles is not None else None
        return body + (snapshot.title_weight * titles if titles is not None else 0.0)

    expected = field_scores(own) + EARLIER_WEIGHT * field_scores([t for t in earlier if t not in own])
    result = search_index(snapshot, ANALYZER, "how fast is it", 4, earlier="Which port does Ollama use?")
    for p in result.passages:
        assert p.score == pytest.approx(expected[int(p.chunk.source[3])])


def test_the_follow_ups_own_words_weigh_more_than_the_previous_questions() -> None:
    snapshot = build_index(CHUNKS, ANALYZER, "bm25s", 1.2, 0.75)
    joined = search_index(snapshot, ANALYZER, "Which port does Ollama use?\nand how fast is it?", 3)
    weighted = search_index(snapshot, ANALYZER, "and how fast is it?", 3, earlier="Which port does Ollama use?")
    assert joined.passages[0].chunk.source == "doc0.md"  # alike, the previous question's two words won
    assert weighted.passages[0].chunk.source == "doc1.md"  # Ollama *and* speed


def test_the_previous_questions_words_count_less_in_the_support_signals() -> None:
    snapshot = build_index(CHUNKS, ANALYZER, "bm25s", 1.2, 0.75)
    terms = query_terms(ANALYZER, "and how fast is it?", "Which port does Ollama use?")
    assert {t: w for t, w in terms.weights.items()} == {"fast": 1.0, "port": EARLIER_WEIGHT, "ollama": EARLIER_WEIGHT}
    weighted = search_index(snapshot, ANALYZER, "and how fast is it?", 3, earlier="Which port does Ollama use?")
    assert weighted.signals.query_terms == 3 and weighted.analysed_terms == ("fast", "port", "ollama")
    # doc1 holds "fast" (1.0) and "ollama" (0.5) of 2.0 in all: coverage 75%, not the 2 of 3 words (67%).
    assert weighted.signals.coverage == pytest.approx(0.75)
    alone = search_index(snapshot, ANALYZER, "and how fast is it?", 3)
    assert alone.signals.max_score < weighted.signals.max_score < search_index(
        snapshot, ANALYZER, "Which port does Ollama use?\nand how fast is it?", 3).signals.max_score
    # A word both questions have is the follow-up's own, at full weight.
    assert query_terms(ANALYZER, "Which port does LM Studio use?", "Which port does Ollama use?").weights["port"] == 1.0
