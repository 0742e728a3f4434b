from rag.index.analysis import Analyzer
from rag.answer.extractive import LABEL, extract_answer
from tests.fakes.pipeline import passages


def test_extract_quotes_matching_sentences_with_citations() -> None:
    found = passages(
        "# Ports\nOllama listens on port 11434 by default. It is easy to install.",
        "LM Studio serves on port 1234. Its user interface is friendly.",
    )
    text = extract_answer(Analyzer().query_terms("Which port does LM Studio listen on?"), found, Analyzer())
    assert text.startswith(LABEL)
    assert "> LM Studio serves on port 1234. [2]" in text
    assert text.index("[1]") < text.index("[2]")  # reading order
    assert "friendly" not in text


def test_extract_with_nothing_relevant() -> None:
    assert "No sentence in the documents matches" in extract_answer(Analyzer().query_terms("zebra?"), passages("Ports and models."), Analyzer())
