"""Reference text pasted into the chat: it grounds the answer like an attached file, as its own source,
and is kept only in the chat's memory (nothing is written unless the user chooses to save it)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from rag.index.analysis import Analyzer
from rag.documents.corpus import Corpus
from rag.errors import UnsupportedDocument
from rag.index.search import IndexSnapshot, build_index, search_index
from rag.types import SearchResult

# A message this long is pasted text rather than a question (a question is rarely a page long).
PASTE_MIN_CHARS = 1500
# The question that may follow pasted text: its last paragraph, if short and asking something.
MAX_QUESTION_CHARS = 400
SOURCE = "pasted text.md"  # how the pasted text is named as a source (never a file on disk)
# The longest chat message (a question, or text after /paste): ~50,000 tokens, a 100-page text. Longer
# texts are attached as files. public/chat.js holds the same number and stops such a message in the browser.
MAX_MESSAGE_CHARS = 200_000
# The websocket frame the server accepts. Socket.IO's default (1,000,000 bytes) closed the connection,
# silently, on a pasted 1 MB text; this leaves room for MAX_MESSAGE_CHARS of any script, JSON-escaped
# (up to 6 bytes a character), so an over-long message reaches the app and gets an answer saying why.
SOCKET_BUFFER_BYTES = 8 * 2**20


def too_long(length: int, max_file_mb: float) -> str | None:
    """What the user is told about a message of `length` characters, or None when it is short enough."""
    if length <= MAX_MESSAGE_CHARS:
        return None
    return (f"This message is {length:,} characters long; a chat message (and `/paste`) holds at most "
            f"{MAX_MESSAGE_CHARS:,}. Attach a longer text as a file (the paperclip: .txt, .md, .pdf, .docx or "
            f".html, up to {max_file_mb:g} MB) and ask about it. Nothing was sent to a model.")


@dataclass(frozen=True)
class Pasted:
    """Pasted reference text and, if the same message asked one, the question about it."""

    text: str
    question: str | None = None


def split_pasted(message: str, always: bool = False) -> Pasted | None:
    """The pasted text of a message, or None for an ordinary question.

    A message of PASTE_MIN_CHARS or more (or any message after /paste, with `always`) is pasted text; a
    last paragraph of at most MAX_QUESTION_CHARS ending with "?" is the question about it.
    """
    text = message.strip()
    if not text or (len(text) < PASTE_MIN_CHARS and not always):
        return None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    last = paragraphs[-1]
    if len(paragraphs) > 1 and len(last) <= MAX_QUESTION_CHARS and last.endswith("?"):
        return Pasted("\n\n".join(paragraphs[:-1]), last)
    return Pasted(text)


class PastedSource:
    """A Searcher over one pasted text alone: chunked like a document, indexed in memory.

    Build it with `await PastedSource.build(...)`; searching it always returns its passages (the best
    ones first, then the rest in reading order), as for an attached file.
    """

    def __init__(self, snapshot: IndexSnapshot, analyzer: Analyzer, words: int) -> None:
        self._snapshot = snapshot
        self._analyzer = analyzer
        self.words = words

    @property
    def chunks(self) -> int:
        """How many passages the text was cut into."""
        return len(self._snapshot.chunks)

    @classmethod
    async def build(cls, text: str, corpus: Corpus, analyzer: Analyzer, engine: str, k1: float, b: float) -> PastedSource:
        """Chunk and index the text off the event loop; UnsupportedDocument if there is nothing to index."""
        def index() -> PastedSource:
            _, chunks = corpus.parse_upload(SOURCE, text.encode("utf-8"))
            return cls(build_index(chunks, analyzer, engine, k1, b), analyzer, len(text.split()))

        if not text.strip():
            raise UnsupportedDocument("the pasted text is empty")
        return await asyncio.to_thread(index)

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """The k best passages of the pasted text (filled in reading order)."""
        return await asyncio.to_thread(search_index, self._snapshot, self._analyzer, query, k, frozenset({SOURCE}),
                                       None, earlier)
