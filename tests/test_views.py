"""The retrieve step's text (rag.ui.views.retrieval_summary)."""

from dataclasses import replace

from rag.types import Retrieved, SearchResult, SupportSignals
from rag.ui.views import retrieval_summary


def _retrieved(on_topic: float | None) -> Retrieved:
    signals = replace(SupportSignals.empty(4), top_score=7.85, support=0.02, on_topic=on_topic)
    return Retrieved(SearchResult("Which TCP port does Ollama listen on?", (), signals, calibration="this corpus"),
                     "Which TCP port does Ollama listen on?", 3.0)


def test_the_step_shows_what_the_off_topic_refusal_reads_when_it_is_not_the_support() -> None:
    """With a corpus calibration the refusal reads its own on-topic estimate: a first-contact walk saw
    "support 2%" answered and "support 1%" refused, with nothing on screen to say why."""
    text = retrieval_summary(_retrieved(0.41))
    assert "support 2% (estimated chance the documents answer this question; this corpus)" in text
    assert "about your documents at all: 41% (what the off-topic refusal reads)" in text
    assert "about your documents" not in retrieval_summary(_retrieved(None))  # the shipped model: one number
