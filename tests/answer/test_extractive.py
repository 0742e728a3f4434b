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


def test_an_extract_keeps_addresses_and_commands_whole() -> None:
    """"export FOUNDRY_LOCAL_ENDPOINT=http://127. [4]": a first-contact walk found the sentence cut at the
    address's first dot, and a broken link made of the rest."""
    found = passages("Set the endpoint by hand:\n\n```bash\nexport FOUNDRY_LOCAL_ENDPOINT=http://127.0.0.1:5273/v1   # or RAG_BASE_URL\n```\n"
                     "Foundry Local picks its port at start, e.g. 5273. Then run llama.cpp's server if you prefer.")
    text = extract_answer(Analyzer().query_terms("Which endpoint does Foundry Local use?"), found, Analyzer())
    assert "FOUNDRY_LOCAL_ENDPOINT=http://127.0.0.1:5273/v1" in text
    assert "Foundry Local picks its port at start, e.g. 5273. [1]" in text
    assert "http://127. " not in text
