"""Turn the bytes of one document into text plus sections (headings, pages) for provenance.

Every failure becomes `UnsupportedDocument` with a specific, user-facing reason; nothing here lets a
library exception escape, because one bad file must never stop the rest of the corpus from loading.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

from rag.errors import UnsupportedDocument
from rag.types import ParsedDocument, Section

log = logging.getLogger(__name__)

# Extension -> kind. Judged by extension and content, never by a MIME type (uploads may say
# application/octet-stream for Markdown).
KINDS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}

MB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    """Size limits applied while parsing (from Settings)."""

    max_bytes: int = 25 * MB
    max_uncompressed_bytes: int = 200 * MB
    max_pages: int = 2000


def kind_of(name: str) -> str | None:
    """The document kind for a file name, or None when the extension is not supported."""
    return KINDS.get(PurePath(name).suffix.lower())


def parse_bytes(data: bytes, name: str, limits: ParseLimits) -> ParsedDocument:
    """Parse one document; raise UnsupportedDocument with a specific reason when it cannot be used."""
    kind = kind_of(name)
    if kind is None:
        supported = ", ".join(sorted(KINDS))
        raise UnsupportedDocument(f"unsupported file type '{PurePath(name).suffix or name}' (supported: {supported})")
    if not data:
        raise UnsupportedDocument("empty file")
    if len(data) > limits.max_bytes:
        raise UnsupportedDocument(
            f"file is {len(data) / MB:.1f} MB, over the limit of {limits.max_bytes / MB:.0f} MB (RAG_MAX_FILE_MB)"
        )
    stem = PurePath(name).stem
    if kind == "pdf":
        return _parse_pdf(data, stem, limits)
    if kind == "docx":
        return _parse_docx(data, stem, limits)
    text, encoding = decode_text(data)
    if not text.strip():
        raise UnsupportedDocument("no text (the file holds only whitespace)")
    if kind == "html":
        return _parse_html(text, stem, encoding)
    if kind == "markdown":
        return _parse_markdown(text, stem, encoding)
    return ParsedDocument(text=text, sections=(Section(0, len(text)),), title=stem, kind=kind, encoding=encoding)


# --- text decoding ------------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode text of unknown encoding; raise UnsupportedDocument for binary data.

    Order matters: a BOM is authoritative; then strict UTF-8 (most files); then BOM-less UTF-16 (NUL bytes
    at every other position); anything else with NUL bytes is binary; the rest goes to charset-normalizer,
    which handles Latin-1, cp1252 and the like.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data[len(bom) :].decode(encoding.replace("-sig", ""))), encoding
            except UnicodeDecodeError as exc:
                raise UnsupportedDocument(f"starts with a {encoding} byte-order mark but is not {encoding}") from exc
    try:
        return _checked(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        if utf16 is None:
            raise UnsupportedDocument("binary data, not text")
        try:
            return _checked(data.decode(utf16)), utf16
        except UnicodeDecodeError as exc:
            raise UnsupportedDocument("binary data, not text") from exc
    from charset_normalizer import from_bytes  # imported lazily: only non-UTF-8 files need it

    candidates = from_bytes(data)
    best = candidates.best()
    # On short texts charset-normalizer scores related single-byte code pages almost equally and may
    # pick a Baltic one for French (cp1257: "crème" -> "crčme") or Mac Cyrillic for Windows Russian.
    # Windows code pages are by far the most common legacy encodings of documents, Windows-1252 first,
    # so among near-ties they win.
    if best is not None:
        ties = [m for m in candidates if m.chaos <= best.chaos + 0.15 and m.coherence >= best.coherence - 0.05]
        best = min(ties, key=lambda m: 0 if m.encoding in _WESTERN else 1 if m.encoding.startswith("cp125") else 2)
    if best is None:
        raise UnsupportedDocument("binary data, not text (no text encoding fits)")
    return _checked(str(best)), best.encoding


_WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _bomless_utf16(data: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when NUL bytes sit at alternate positions, as in ASCII-range UTF-16."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / len(sample[0::2])
    odd_nuls = sample[1::2].count(0) / len(sample[1::2])
    if odd_nuls > 0.4 and even_nuls < 0.05:
        return "utf-16-le"
    if even_nuls > 0.4 and odd_nuls < 0.05:
        return "utf-16-be"
    return None


def _checked(text: str) -> str:
    """Refuse decoded 'text' that is mostly control characters (binary that happened to decode)."""
    sample = text[:20000]
    if sample:
        bad = sum(1 for ch in sample if unicodedata.category(ch) in {"Cc", "Co", "Cn"} and ch not in "\t\n\r\f\v")
        if bad / len(sample) > 0.02:
            raise UnsupportedDocument("binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- Markdown -----------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _parse_markdown(text: str, stem: str, encoding: str) -> ParsedDocument:
    """Sections at ATX and setext headings (outside fenced code); the heading path is their provenance."""
    headings: list[tuple[int, int, str]] = []  # (char offset of the heading line, level, title)
    offset = 0
    in_fence = False
    previous: tuple[int, str] | None = None  # (offset, text) of the previous non-blank line
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\n")
        if _FENCE.match(stripped):
            in_fence = not in_fence
        elif not in_fence:
            atx = _ATX.match(stripped)
            setext = _SETEXT.match(stripped)
            if atx:
                headings.append((offset, len(atx.group(1)), atx.group(2).strip()))
            elif setext and previous is not None and not _ATX.match(previous[1]):
                level = 1 if setext.group(1).startswith("=") else 2
                headings.append((previous[0], level, previous[1].strip()))
        previous = (offset, stripped) if stripped.strip() and not in_fence else None
        offset += len(line)
    return _sections_from_headings(text, headings, stem, "markdown", encoding)


def _sections_from_headings(
    text: str, headings: list[tuple[int, int, str]], stem: str, kind: str, encoding: str | None
) -> ParsedDocument:
    sections: list[Section] = []
    if not headings or headings[0][0] > 0:
        first = headings[0][0] if headings else len(text)
        if text[:first].strip():
            sections.append(Section(0, first, None))
    stack: list[tuple[int, str]] = []
    for i, (start, level, title) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append(Section(start, end, " › ".join(t for _, t in stack)))
    title = next((t for _, level, t in headings if level <= 1), stem)
    return ParsedDocument(text=text, sections=tuple(sections), title=title, kind=kind, encoding=encoding)


def _sections_from_blocks(
    blocks: list[tuple[int | None, str]], stem: str, kind: str, encoding: str | None
) -> ParsedDocument:
    """Join (heading level or None, text) blocks with blank lines; headings start sections."""
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for level, text in blocks:
        if level is not None:
            headings.append((offset, level, text))
        offset += len(text) + 2
    return _sections_from_headings("\n\n".join(text for _, text in blocks), headings, stem, kind, encoding)


# --- HTML ---------------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote caption dd div dl dt figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header li main nav ol p pre section table td th tr ul body".split()
)
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "head")


def _parse_html(markup: str, stem: str, encoding: str) -> ParsedDocument:
    """Visible text grouped by block element; h1-h6 start sections."""
    from bs4 import BeautifulSoup, Comment, Doctype, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    blocks: list[tuple[str, str]] = []  # (block tag name, text)
    current_block: object = None
    parts: list[str] = []

    def flush() -> None:
        if parts and current_block is not None:
            joined = " ".join(" ".join(parts).split())
            if joined:
                blocks.append((getattr(current_block, "name", "p"), joined))
        parts.clear()

    for node in soup.descendants:
        if not isinstance(node, NavigableString) or isinstance(node, (Comment, Doctype)):
            continue
        block = next((p for p in node.parents if p.name in _BLOCK_TAGS), soup)
        if block is not current_block:
            flush()
            current_block = block
        parts.append(str(node))
    flush()
    if not blocks:
        raise UnsupportedDocument("no visible text in the HTML")

    levelled = [(int(name[1]) if len(name) == 2 and name[0] == "h" and name[1].isdigit() else None, text)
                for name, text in blocks]
    parsed = _sections_from_blocks(levelled, stem, "html", encoding)
    if page_title:
        return ParsedDocument(parsed.text, parsed.sections, page_title, "html", encoding=encoding)
    return parsed


# --- DOCX ---------------------------------------------------------------------------------------------


def _parse_docx(data: bytes, stem: str, limits: ParseLimits) -> ParsedDocument:
    """Paragraphs and tables in body order; Heading N / Title styles start sections."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsupportedDocument("corrupt DOCX (not a valid ZIP archive)") from exc
    # zipfile stops reading a member at its declared size, so the declared total bounds what
    # python-docx can inflate: checking it refuses zip bombs before anything is decompressed.
    unpacked = sum(m.file_size for m in members)
    if unpacked > limits.max_uncompressed_bytes:
        raise UnsupportedDocument(
            f"DOCX would decompress to {unpacked / MB:,.0f} MB, over the limit of "
            f"{limits.max_uncompressed_bytes / MB:.0f} MB (RAG_MAX_UNCOMPRESSED_MB); refusing a likely zip bomb"
        )
    if "word/document.xml" not in {m.filename for m in members}:
        raise UnsupportedDocument("corrupt DOCX (no word/document.xml inside)")
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
        items: list[tuple[int | None, str]] = []  # (heading level, or None for body text, text)
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                paragraph = Paragraph(child, document)
                text = paragraph.text.strip()
                if text:
                    items.append((_docx_heading_level(paragraph), text))
            elif tag == "tbl":
                for row in Table(child, document).rows:
                    cells = [cell.text.strip() for cell in row.cells]
                    line = " | ".join(c for c in dict.fromkeys(cells) if c)
                    if line:
                        items.append((None, line))
        core_title = (document.core_properties.title or "").strip()
    except UnsupportedDocument:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx/lxml raise many types for malformed files
        raise UnsupportedDocument(f"corrupt DOCX ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not items:
        raise UnsupportedDocument("no text in the DOCX")
    parsed = _sections_from_blocks(items, stem, "docx", None)
    if core_title:
        return ParsedDocument(parsed.text, parsed.sections, core_title, "docx")
    return parsed


def _docx_heading_level(paragraph: object) -> int | None:
    """0 for the Title style (above Heading 1), 1-6 for Heading N, None for body text."""
    style = getattr(getattr(paragraph, "style", None), "name", "") or ""
    if style == "Title":
        return 0
    if style.startswith("Heading"):
        digits = "".join(ch for ch in style if ch.isdigit())
        return min(int(digits), 6) if digits else 1
    return None


# --- PDF ----------------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, stem: str, limits: ParseLimits) -> ParsedDocument:
    """One section per page, so every chunk can cite its page number."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every harmless oddity
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "encrypted" PDFs only restrict printing/copying
            except Exception as exc:  # noqa: BLE001 - missing crypto backend, unknown algorithm, ...
                raise UnsupportedDocument(f"encrypted PDF that cannot be opened ({exc})") from exc
            if not opened:
                raise UnsupportedDocument("encrypted PDF (a password is required)")
        n_pages = len(reader.pages)
    except UnsupportedDocument:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed PDFs raise PdfReadError and many other types
        raise UnsupportedDocument(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if n_pages == 0:
        raise UnsupportedDocument("PDF has no pages")
    if n_pages > limits.max_pages:
        raise UnsupportedDocument(f"PDF has {n_pages} pages, over the limit of {limits.max_pages} (RAG_MAX_PAGES)")
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    failed_pages = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            page_text = (page.extract_text() or "").strip()
        except Exception:  # noqa: BLE001 - one broken page must not lose the others
            failed_pages += 1
            log.debug("page %d of %s could not be read", number, stem, exc_info=True)
            continue
        if not page_text:
            continue
        sections.append(Section(offset, offset + len(page_text), None, number))
        parts.append(page_text)
        offset += len(page_text) + 2
    if not parts:
        if failed_pages:
            raise UnsupportedDocument(f"corrupt PDF: none of its {n_pages} pages could be read")
        raise UnsupportedDocument("no extractable text; OCR is not supported (is it a scanned PDF?)")
    title = stem
    try:
        if reader.metadata and reader.metadata.title and reader.metadata.title.strip():
            title = reader.metadata.title.strip()
    except Exception:  # noqa: BLE001 - malformed metadata is not worth losing the document over
        pass
    return ParsedDocument("\n\n".join(parts), tuple(sections), title, "pdf", pages=n_pages)
