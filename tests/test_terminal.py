"""Hostile names printed to a terminal (issue 21, finding 7): a right-to-left override showed
`invoice\u202etxt.md` as `invoicedm.txt`; a newline in a name forged a row of `rag corpus list`."""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from rag.terminal import shown


@pytest.mark.parametrize(("raw", "visible"), [
    ("invoice\u202etxt.md", "invoice\\u202etxt.md"),
    ("a\nb.md", "a\\nb.md"), ("a\rb", "a\\rb"), ("tab\there", "tab\\there"),
    ("\x1b[2Jclear.md", "\\x1b[2Jclear.md"), ("zero\u200bwidth", "zero\\u200bwidth"),
    ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"), ("arabic\u061cmark", "arabic\\u061cmark"),
    ("line\u2028sep", "line\\u2028sep"), ("del\x7f", "del\\x7f"), ("soft\u00adhyphen", "soft\\xadhyphen"),
    ("plain name.md", "plain name.md"), ("café ✓ 日本語 नमस्ते.md", "café ✓ 日本語 नमस्ते.md"),
    ("wide\u3000space", "wide\u3000space"),
])
def test_every_control_and_bidirectional_character_is_shown_as_an_escape(raw: str, visible: str) -> None:
    assert shown(raw) == visible


def test_corpus_list_escapes_hostile_names_like_json_does(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["invoice\u202etxt.md", "forged\nfake.md  md  1 KB  9  ok", "\x1b[31mred.md", "normal.md"]
    for name in names:
        (corpus_dir / name).write_text("# Doc\n\nkiwi facts")
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    output = CliRunner().invoke(cli, ["corpus", "list"]).output
    lines = output.splitlines()
    assert len(lines) == 1 + len(names) + 2  # header, one row each, a blank line and the summary: no forged row
    assert not any(c in output for c in ("\u202e", "\x1b")) and "invoice\\u202etxt.md" in output
    assert "forged\\nfake.md" in output and "\\x1b[31mred.md" in output
    found = CliRunner().invoke(cli, ["search", "kiwi"]).output
    assert "\u202e" not in found and "\x1b" not in found and "invoice\\u202etxt.md" in found
    assert os.path.exists(corpus_dir / names[0])  # nothing renamed: only the printing changes
