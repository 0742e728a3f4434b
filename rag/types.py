"""Frozen value types shared across stages: documents, chunks, passages and retrieval signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DocumentStatus = Literal["ok", "skipped"]


@dataclass(frozen=True)
class Section:
    """A span of a document's extracted text under one heading or on one page."""

    start: int
    end: int
    heading: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """The text a parser extracted, with the sections that give chunks their provenance.

    For Markdown and plain text `text` is the file's own decoded text, so character spans point into the
    file; for PDF, DOCX and HTML they point into the extracted text.
    """

    text: str
    sections: tuple[Section, ...]
    title: str
    kind: str
    pages: int | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, with everything needed to cite it."""

    source: str  # path relative to the corpus folder, with forward slashes
    index: int  # position of this chunk within its document
    text: str
    start: int  # character span in the document's (extracted) text
    end: int
    title: str
    heading: str | None = None
    page: int | None = None
    n_tokens: int = 0

    @property
    def location(self) -> str:
        """Human-readable provenance: 'file.md › Heading' or 'file.pdf › page 3'."""
        where = self.heading if self.heading else (f"page {self.page}" if self.page else None)
        return f"{self.source} › {where}" if where else self.source


@dataclass(frozen=True)
class DocumentInfo:
    """What `rag corpus list` and `/docs` show about one file of the corpus."""

    source: str
    kind: str
    size_bytes: int
    chunks: int
    status: DocumentStatus
    reason: str | None = None
    pages: int | None = None
    modified: float = 0.0  # mtime, seconds since the epoch
    content_hash: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its BM25 score and rank (1-based)."""

    chunk: Chunk
    score: float
    rank: int


@dataclass(frozen=True)
class SupportSignals:
    """How well the corpus supports a query: what the escalation policy reads from retrieval.

    `coverage` is the share of distinct analysed query terms present in the top passage;
    `weighted_coverage` weighs each term by its idf, so question words found everywhere ("which", "does")
    count little and a rare term the corpus lacks counts most. `margin` is the top score minus the second;
    `relative_margin` is that margin divided by the top score.
    """

    top_score: float
    second_score: float
    margin: float
    relative_margin: float
    coverage: float
    weighted_coverage: float
    query_terms: int
    matched_terms: tuple[str, ...] = ()

    @classmethod
    def empty(cls, query_terms: int = 0) -> SupportSignals:
        """Signals for a query nothing matched."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, query_terms, ())


@dataclass(frozen=True)
class SearchResult:
    """The passages for one query, best first, and the support signals."""

    query: str
    passages: tuple[Passage, ...]
    signals: SupportSignals
    analysed_terms: tuple[str, ...] = field(default=())
