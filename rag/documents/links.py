"""Links to the corpus's PDF files, for the cited pages a stored conversation shows again when reopened.

A link is `/corpus-file/<path in the corpus>`; the path it names is only ever resolved inside the corpus
folder, and only to a PDF (rag.ui.server.corpus_files serves it, to signed-in users).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

PREFIX = "/corpus-file/"


def corpus_link(corpus: Path | None, path: str | Path | None) -> str | None:
    """The link to a PDF file inside `corpus`, or None (no corpus, no file, not a PDF, outside it)."""
    if corpus is None or not path:
        return None
    root = corpus.resolve()
    file = _pdf_inside(root, Path(path))
    return None if file is None else PREFIX + quote(file.relative_to(root).as_posix())


def corpus_pdf(corpus: Path, link_path: str) -> Path | None:
    """The PDF file a link's path names, if it is one inside `corpus` (no "..", no link out, no other type)."""
    relative = unquote(link_path)
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    root = corpus.resolve()
    return _pdf_inside(root, root / relative)


def _pdf_inside(root: Path, path: Path) -> Path | None:
    """`path` resolved (links followed), if it is a PDF file inside `root` (resolved)."""
    file = path.resolve()
    if file.suffix.lower() != ".pdf" or not file.is_relative_to(root) or not file.is_file():
        return None
    return file
