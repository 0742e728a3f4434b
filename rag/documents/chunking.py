"""Split a parsed document into token-sized chunks that respect section and paragraph boundaries.

Chunks never cross a section (heading or page), so each has one provenance. Within a section, paragraphs
are packed greedily up to `chunk_tokens`; a paragraph too long for one chunk is split at sentences, and a
sentence too long at token boundaries. Consecutive chunks of a section share up to `overlap` tokens of
whole units (paragraphs or sentences), so a fact on a boundary is found in either chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.llm.tokens import TokenCounter
from rag.types import Chunk, ParsedDocument

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def chunk_document(doc: ParsedDocument, source: str, tokenizer: TokenCounter, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Chunks of `doc`, in reading order, each carrying source, index, span, heading or page."""
    chunks: list[Chunk] = []
    for section in doc.sections:
        units = _units(doc.text, section.start, section.end, tokenizer, chunk_tokens)
        for start, end in _pack(units, chunk_tokens, overlap):
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    source=source,
                    index=len(chunks),
                    text=text,
                    start=start,
                    end=end,
                    title=doc.title,
                    heading=section.heading,
                    page=section.page,
                    n_tokens=tokenizer.count(text),
                )
            )
    return chunks


def _spans(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-blank pieces of text[start:end] between separator matches, as stripped absolute spans."""
    spans = []
    cursor = start
    for match in separator.finditer(text, start, end):
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    stripped = []
    for s, e in spans:
        piece = text[s:e]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if e - trail > s + lead:
            stripped.append((s + lead, e - trail))
    return stripped


def _units(text: str, start: int, end: int, tokenizer: TokenCounter, limit: int) -> list[_Unit]:
    """Paragraphs; sentences of paragraphs over the limit; token windows of sentences over it."""
    units: list[_Unit] = []
    for p_start, p_end in _spans(text, start, end, _PARAGRAPH_BREAK):
        n = tokenizer.count(text[p_start:p_end])
        if n <= limit:
            units.append(_Unit(p_start, p_end, n))
            continue
        for s_start, s_end in _spans(text, p_start, p_end, _SENTENCE_END):
            n = tokenizer.count(text[s_start:s_end])
            if n <= limit:
                units.append(_Unit(s_start, s_end, n))
            else:
                units.extend(_token_windows(text, s_start, s_end, tokenizer, limit))
    return units


def _token_windows(text: str, start: int, end: int, tokenizer: TokenCounter, limit: int) -> list[_Unit]:
    """Cut a run of text with no sentence break into pieces of at most `limit` tokens."""
    piece = text[start:end]
    ids = tokenizer.encode(piece)
    offsets = tokenizer.offsets(ids)
    windows = []
    for first in range(0, len(ids), limit):
        last = min(first + limit, len(ids))
        w_start = start + offsets[first]
        w_end = start + offsets[last] if last < len(ids) else end
        if w_end > w_start:
            windows.append(_Unit(w_start, w_end, last - first))
    return windows


def _pack(units: list[_Unit], limit: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into spans of at most `limit` tokens, with whole-unit overlap."""
    spans: list[tuple[int, int]] = []
    current: list[_Unit] = []
    total = 0
    for unit in units:
        if current and total + unit.tokens > limit:
            spans.append((current[0].start, current[-1].end))
            carried: list[_Unit] = []
            carried_tokens = 0
            for previous in reversed(current[1:]):  # never carry the whole chunk: that would repeat it
                if carried_tokens + previous.tokens > overlap:
                    break
                carried.insert(0, previous)
                carried_tokens += previous.tokens
            if carried_tokens + unit.tokens > limit:
                carried, carried_tokens = [], 0
            current, total = carried, carried_tokens
        current.append(unit)
        total += unit.tokens
    if current:
        spans.append((current[0].start, current[-1].end))
    return spans
