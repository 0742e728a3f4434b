"""Untrusted text into Markdown: escaping for each context, and model answers made safe to render.

File names, headings and document text are controlled by whoever wrote the file; model answers by whoever
wrote the documents the model read (prompt injection). The chat renders Markdown, so each such string is
escaped for the place it lands in: a code span, a table cell, running text. Answers keep their Markdown,
but nothing in them loads a remote resource by itself (an image URL would leak data to its server the
moment the answer renders), and every link shows where it goes.
"""

from __future__ import annotations

import re

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~])")


def plain(text: str) -> str:
    """`text` as literal running text on one line: whatever could start emphasis, code, a link, an image or
    HTML is escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text))


def code(text: str) -> str:
    """`text` as an inline code span that no backtick inside it can close; one line."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """`text` inside a Markdown table cell: literal, one line, pipes escaped."""
    return plain(text)


def _one_line(text: str) -> str:
    return " ".join(_ZERO_WIDTH.sub("", text).split())


# --- model answers --------------------------------------------------------------------------------

_FENCE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*[\"')])?\s*\)")
_LINK = re.compile(r"(?<![!\\])\[([^\]\n]+)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*[\"')])?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"(?m)^( {0,3})\[([^\]\n]+)\]:")
_HTML_TAG = re.compile(r"<(/?[A-Za-z!?])")
_BARE_NUMBER_LINE = re.compile(r"(?m)^( {0,3})(\d{1,9})([.)])[ \t]*$")


def safe_answer(text: str) -> str:
    """A model answer that renders without loading anything and whose links show their destination.

    Outside code: an image becomes a line of text naming it and its address (not loaded); a link
    `[text](url)` becomes `text (url)`, the address visible and only web addresses clickable; reference
    definitions (`[x]: url`) are shown as text, so no `[text][x]` can hide an address or an image; raw HTML
    is shown as text. Citations like `[1]` are untouched. Code spans and fenced blocks are kept as written
    (Markdown never loads anything from inside them).
    """
    out: list[str] = []
    position = 0
    for match in _code_regions(text):
        out.append(_safe_prose(text[position : match[0]]))
        out.append(text[match[0] : match[1]])
        position = match[1]
    out.append(_safe_prose(text[position:]))
    return "".join(out)


def _code_regions(text: str) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    for fence in _FENCE.finditer(text):
        regions.append((fence.start() + len(fence.group(1)), fence.end()))
    outside = 0
    spans: list[tuple[int, int]] = []
    for start, end in regions + [(len(text), len(text))]:
        spans.extend((outside + m.start(), outside + m.end()) for m in _INLINE_CODE.finditer(text[outside:start]))
        outside = end
    return sorted(regions + spans)


def _safe_prose(text: str) -> str:
    text = _HTML_TAG.sub(r"&lt;\1", text)  # first: the autolinks made below are not tags
    text = _IMAGE.sub(lambda m: f"[image not loaded: {plain(m.group(1)) or 'untitled'}] ({_address(m.group(2))})", text)
    text = _LINK.sub(lambda m: _link(m.group(1), m.group(2)), text)
    text = _REFERENCE_DEFINITION.sub(lambda m: f"{m.group(1)}\\[{m.group(2)}\\]:", text)
    # A line that is only a number and a dot ("11434.") is an empty ordered-list item in Markdown: it would
    # render as nothing. Escaped, it reads as written.
    text = _BARE_NUMBER_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)}\\{m.group(3)}", text)
    return text.replace("![", "!\\[")  # anything image-like left (reference style, malformed) stays text


def _link(label: str, url: str) -> str:
    if label.strip() == url.strip():
        return _address(url)
    return f"{label} ({_address(url)})"


def _address(url: str) -> str:
    """A web address as a visible autolink; anything else (javascript:, data:, relative) as inert code."""
    if re.fullmatch(r"https?://[^\s<>]+", url):
        return f"<{url}>"
    return code(url) if url else "no address"


_CITATION = re.compile(r"\[(\d{1,2})\]")


def link_citations(text: str, available: int, anchor: str) -> str:
    """Make each citation [n] (1 <= n <= available) a link to `#{anchor}-{n}`, outside code.

    Run on text that went through `safe_answer`: the links made here are the only ones left unchanged.
    """
    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f"[\\[{number}\\]](#{anchor}-{number})" if 1 <= number <= available else match.group(0)

    out: list[str] = []
    position = 0
    for start, end in _code_regions(text):
        out.append(_CITATION.sub(link, text[position:start]))
        out.append(text[start:end])
        position = end
    out.append(_CITATION.sub(link, text[position:]))
    return "".join(out)


class StreamGuard:
    """Makes streamed answer text inert while it streams: `![` never reaches the page as an image.

    Streamed pieces are appended in the browser as they arrive, so a finished `![x](url)` would load at
    once; the final answer is re-rendered through `safe_answer`. A trailing `!` is held back until the
    next piece shows whether a `[` follows.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        """The text to stream for `piece`."""
        text = (self._held + piece).replace("![", "!\\[")
        if text.endswith("!"):
            self._held = "!"
            return text[:-1]
        self._held = ""
        return text

    def flush(self) -> str:
        """Whatever is still held back."""
        held, self._held = self._held, ""
        return held


_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|>|\||```|~~~)")
_FENCE_LINE = re.compile(r"^\s*(?:```|~~~)")


def unwrap(text: str) -> str:
    """Hard-wrapped paragraphs as one line each, for a renderer that keeps line breaks.

    Documents wrapped at 80-110 columns rendered raggedly in an opened source (issue 26). A line is
    joined to the one before when both are prose: not blank, not in a code fence, not a heading, list
    item, quote, table row or fence, and the one before does not end in a Markdown hard break. List
    items keep their continuation lines.
    """
    out: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if _FENCE_LINE.match(line):
            fenced = not fenced
            out.append(line)
            continue
        previous = out[-1] if out else ""
        joinable = (not fenced and out and line.strip() and previous.strip() and not _BLOCK_START.match(line)
                    and not previous.lstrip().startswith(("#", "|", ">", "```", "~~~")) and not previous.endswith("  ")
                    and not _FENCE_LINE.match(previous) and not line.startswith("    "))
        if joinable:
            out[-1] = previous.rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)
