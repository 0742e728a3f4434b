"""The editable corpus folder: which documents exist, their chunks, and why any were skipped.

`Corpus.scan()` walks the folder and re-parses only files whose size or mtime changed and whose content
hash then differs, so edits, additions and deletions show up in the next query without a restart. Scans
are synchronous (run them with `asyncio.to_thread`) and must not run concurrently: the async layer in
`rag.retrieval.Retriever` serialises them. Readers see one consistent state because the state is swapped
as a whole at the end of a scan.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from rag.chunking import chunk_document
from rag.errors import CorpusError, UnsupportedDocument
from rag.parsing import ParseLimits, kind_of, parse_bytes
from rag.tokens import Tokenizer
from rag.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)

# Files the uploader writes before renaming them into place (rag/uploads); never indexed.
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class _Entry:
    info: DocumentInfo
    chunks: tuple[Chunk, ...]
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class ScanReport:
    """What one scan changed (relative paths)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        """True when the set of chunks may differ from before the scan."""
        return bool(self.added or self.changed or self.removed)


class Corpus:
    """Documents under one folder, parsed and chunked, cached by (size, mtime) and content hash."""

    def __init__(
        self, root: Path, tokenizer: Tokenizer, chunk_tokens: int, chunk_overlap: int, limits: ParseLimits
    ) -> None:
        self.root = root
        self._tokenizer = tokenizer
        self._chunk_tokens = chunk_tokens
        self._chunk_overlap = chunk_overlap
        self._limits = limits
        self._entries: dict[str, _Entry] = {}

    def scan(self) -> ScanReport:
        """Bring the cached state in line with the folder; return what changed."""
        if not self.root.is_dir():
            raise CorpusError(f"corpus folder {self.root} does not exist or is not a directory")
        old = self._entries
        new: dict[str, _Entry] = {}
        added: list[str] = []
        changed: list[str] = []
        for path in self._walk():
            source = path.relative_to(self.root).as_posix()
            try:
                stat = path.stat()
            except OSError:
                continue  # deleted between listing and stat
            previous = old.get(source)
            if previous and previous.mtime_ns == stat.st_mtime_ns and previous.size == stat.st_size:
                new[source] = previous
                continue
            entry = self._load(path, source, stat.st_size, stat.st_mtime_ns, stat.st_mtime)
            if previous and previous.info.content_hash == entry.info.content_hash and entry.info.content_hash:
                new[source] = replace(previous, mtime_ns=entry.mtime_ns, size=entry.size)  # touched, not edited
                continue
            new[source] = entry
            (changed if previous else added).append(source)
        removed = tuple(sorted(set(old) - set(new)))
        self._entries = new
        return ScanReport(tuple(added), tuple(changed), removed)

    def documents(self) -> list[DocumentInfo]:
        """Every file seen, served or skipped, sorted by path."""
        return [self._entries[k].info for k in sorted(self._entries)]

    def chunks(self) -> list[Chunk]:
        """Every chunk of every served document, in path order."""
        return [c for k in sorted(self._entries) for c in self._entries[k].chunks]

    def document_chunks(self) -> dict[tuple[str, str], tuple[Chunk, ...]]:
        """Chunks keyed by (source, content hash): a stable key for caching analysed terms."""
        return {(k, e.info.content_hash): e.chunks for k, e in sorted(self._entries.items()) if e.chunks}

    def parse_upload(self, source: str, data: bytes) -> tuple[DocumentInfo, tuple[Chunk, ...]]:
        """Parse and chunk bytes destined for `source`; raises UnsupportedDocument. Writes nothing."""
        kind = kind_of(source) or "unknown"
        parsed = parse_bytes(data, source, self._limits)
        chunks = chunk_document(parsed, source, self._tokenizer, self._chunk_tokens, self._chunk_overlap)
        if not chunks:
            raise UnsupportedDocument("no text to index")
        digest = hashlib.sha256(data).hexdigest()
        info = DocumentInfo(source, kind, len(data), len(chunks), "ok", None, parsed.pages, 0.0, digest)
        return info, tuple(chunks)

    def adopt(self, path: Path, info: DocumentInfo, chunks: tuple[Chunk, ...]) -> None:
        """Register a file just written from already-parsed content, so the next scan does not re-parse it.

        Must run where scans run (under the retriever's lock).
        """
        stat = path.stat()
        entry = _Entry(replace(info, modified=stat.st_mtime), chunks, stat.st_mtime_ns, stat.st_size)
        self._entries = {**self._entries, info.source: entry}

    def forget(self, source: str) -> None:
        """Drop a document whose file was just deleted (under the retriever's lock)."""
        self._entries = {k: v for k, v in self._entries.items() if k != source}

    def find_by_hash(self, digest: str) -> str | None:
        """The source of a served document with this content hash, if any."""
        return next((k for k, e in self._entries.items() if e.info.content_hash == digest and e.chunks), None)

    def total_bytes(self) -> int:
        """Size of every file seen."""
        return sum(e.size for e in self._entries.values())

    def _walk(self) -> list[Path]:
        paths = []
        for directory, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):  # hidden files, editor swap files and upload temp files
                    continue
                paths.append(Path(directory) / name)
        return paths

    def _load(self, path: Path, source: str, size: int, mtime_ns: int, mtime: float) -> _Entry:
        kind = kind_of(path.name) or path.suffix.lower().lstrip(".") or "unknown"

        def skipped(reason: str, digest: str = "") -> _Entry:
            log.info("skipping %s: %s", source, reason)
            info = DocumentInfo(source, kind, size, 0, "skipped", reason, modified=mtime, content_hash=digest)
            return _Entry(info, (), mtime_ns, size)

        if kind_of(path.name) is None:
            return skipped(f"unsupported file type '{path.suffix or path.name}'")
        if size > self._limits.max_bytes:
            return skipped(
                f"file is {size / 2**20:.1f} MB, over the limit of {self._limits.max_bytes / 2**20:.0f} MB (RAG_MAX_FILE_MB)"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            return skipped(f"cannot be read ({exc.strerror or exc})")
        digest = hashlib.sha256(data).hexdigest()
        try:
            parsed = parse_bytes(data, path.name, self._limits)
            chunks = chunk_document(parsed, source, self._tokenizer, self._chunk_tokens, self._chunk_overlap)
        except UnsupportedDocument as exc:
            return skipped(exc.reason, digest)
        if not chunks:
            return skipped("no text to index", digest)
        info = DocumentInfo(source, kind, len(data), len(chunks), "ok", None, parsed.pages, mtime, digest)
        return _Entry(info, tuple(chunks), mtime_ns, len(data))
