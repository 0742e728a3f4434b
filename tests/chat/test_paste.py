"""Pasted reference text: recognised, split from its question, searched on its own, never written."""

from pathlib import Path

import pytest

from rag.index.analysis import Analyzer
from rag.config import Settings
from rag.errors import UnsupportedDocument
from rag.chat.paste import PASTE_MIN_CHARS, SOURCE, Pasted, PastedSource, split_pasted
from rag.runtime import build_library

REPORT = "\n\n".join(f"Section {i}. The walrus colony on island {i} grew by {i * 3} percent." for i in range(60))


def test_long_messages_are_pasted_text_with_an_optional_question() -> None:
    assert len(REPORT) >= PASTE_MIN_CHARS
    assert split_pasted("Which port does Ollama use?") is None
    assert split_pasted(REPORT) == Pasted(REPORT)
    assert split_pasted(REPORT + "\n\nWhich island grew most?") == Pasted(REPORT, "Which island grew most?")
    assert split_pasted("Short text.\n\nWhat is it about?", always=True) == Pasted("Short text.", "What is it about?")
    assert split_pasted("   ", always=True) is None


async def test_the_pasted_text_is_searched_alone_and_nothing_is_written(settings: Settings, corpus_dir: Path) -> None:
    (corpus_dir / "other.md").write_text("# Other\n\nWalrus facts from the corpus.")
    library = build_library(settings)
    source = await PastedSource.build(REPORT, library.corpus, Analyzer(), "rank-bm25", 1.2, 0.75)
    result = await source.search("island 42 walrus", 3)
    assert result.passages and {p.chunk.source for p in result.passages} == {SOURCE}
    assert any("island 42 " in p.chunk.text for p in result.passages)
    assert sorted(p.name for p in corpus_dir.iterdir()) == ["other.md"]  # nothing written
    with pytest.raises(UnsupportedDocument):
        await PastedSource.build("  ", library.corpus, Analyzer(), "rank-bm25", 1.2, 0.75)
