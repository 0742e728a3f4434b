"""Conversation titles from the first question (issue 26)."""

from rag.chat.titles import conversation_title


def test_a_question_names_its_conversation_cut_at_a_word() -> None:
    assert conversation_title("Which port does Ollama use?") == "Which port does Ollama use?"
    long = "How do I run phi-4-mini and gpt-oss-20b on Foundry Local and connect this app when the port keeps changing every time?"
    title = conversation_title(long)
    assert title is not None and len(title) <= 80 and title.endswith("…") and long.startswith(title[:-1])
    assert conversation_title("  many\n\nlines   here ") == "many lines here"


def test_commands_name_nothing() -> None:
    for content, command in (("", "docs"), ("/docs", None), ("/stats", None), ("", "export"), ("/chart", None), ("   ", None)):
        assert conversation_title(content, command) is None


def test_pasted_text_is_named_by_its_question_never_by_the_text() -> None:
    text = "The warranty covers parts for two years. " * 20  # 829 characters, under the automatic threshold
    assert conversation_title(f"/paste {text}\n\nHow long are parts covered?") == "Pasted text: How long are parts covered?"
    assert conversation_title(f"{text}\n\nHow long are parts covered?", "paste") == "Pasted text: How long are parts covered?"
    assert conversation_title(f"/paste {text}") == f"Pasted text ({len(text.strip()):,} characters)"
    pasted = "A line of a long document. " * 80  # pasted without /paste
    assert conversation_title(pasted) == f"Pasted text ({len(pasted.strip()):,} characters)"
