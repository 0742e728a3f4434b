"""The exported conversation (issue 26): sources keep their numbers in every Markdown viewer, and file
names are cut at a word."""

import re

from rag.chat.conversation import CitedSource, Conversation, Exchange
from rag.chat.export import file_stem, to_markdown


def test_cited_sources_keep_the_numbers_the_answer_uses() -> None:
    exchange = Exchange("Which ports?", "Ollama uses 11434 [1]; LM Studio 1234 [3].", "auto", "phi-4-mini",
                        (CitedSource(1, "servers/ollama.md", 0, "Ollama"), CitedSource(3, "servers/lm-studio.md", 2, "LM Studio")))
    markdown = to_markdown(Conversation((exchange,)), "Ports")
    assert "- \\[1\\] Ollama" in markdown and "- \\[3\\] LM Studio" in markdown
    assert not re.search(r"^\d+\. ", markdown, re.MULTILINE)  # no ordered list for a viewer to renumber 1, 2


def test_file_names_are_cut_at_a_word() -> None:
    assert file_stem("Which port does Ollama use?") == "Which-port-does-Ollama-use"
    long = file_stem("What does the build prompt step measure and why is it so fast compared with retrieval?")
    assert len(long) <= 48 and long == "What-does-the-build-prompt-step-measure-and-why"
    assert file_stem("???") == "conversation" and file_stem("x" * 80) == "x" * 48
