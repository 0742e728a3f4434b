"""The editable corpus folder: which documents exist, their chunks, and why any were skipped.

`Corpus.scan()` walks the folder and re-parses only files whose size or mtime changed and whose content
hash then differs, so edits, additions and deletions show up in the next query without a restart. Scans
are synchronous (run them with `asyncio.to_thread`) and must not run concurrently: the async layer in
`rag.index.retriever.Retriever` serialises them. Readers see one consistent state because the state is swapped
as a whole at the end of a scan.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from rag.documents.chunking import chunk_document
from rag.errors import CorpusError, UnsupportedDocument
from rag.documents.parsing import ParseLimits, kind_of, parse_bytes
from rag.llm.tokens import TokenCounter
from rag.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)

# Files the library writes before renaming them into place (rag/library); never indexed.
TEMP_PREFIX = ".tmp-"

DocumentKey = tuple[str, str]  # (source, content hash): stable while a document's content is unchanged


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


def corpus_path(root: Path, source: str) -> Path:
    """The path `source` names inside the corpus folder `root`, or CorpusError saying why it is refused.

    The one check every path from any source goes through (the walk, the change log other processes
    write, watcher events, uploads, deletions): a relative POSIX path with no `..`, no hidden part, no
    NUL, and no symbolic link on the way to it. Folder links are refused whatever
    RAG_FOLLOW_EXTERNAL_LINKS says: the walk never enters them, and a name that passes through one
    could reach any file of the host (a linked *file* is judged by the caller, which knows that setting).
    A part that does not exist yet is fine (a document deleted, or about to be written).
    """
    pure = PurePosixPath(source)
    if not source or "\x00" in source or pure.is_absolute() or source.startswith("/"):
        raise CorpusError(f"{source!r} is not a path relative to the corpus folder")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:  # a name os.walk could only decode with surrogate escapes
        raise CorpusError(f"{source!r} is not a valid UTF-8 file name; rename the file") from exc
    if pure.as_posix() != source:  # "a/./b", "a//b", "a/": a change log we did not write
        raise CorpusError(f"{source!r} is not a plain relative path")
    if any(part == ".." or part.startswith(".") for part in pure.parts):
        raise CorpusError(f"{source!r} names a hidden file or leaves the corpus folder")
    path = root
    for part in pure.parts[:-1]:
        path = path / part
        try:
            info = path.lstat()
        except FileNotFoundError:
            return root.joinpath(*pure.parts)
        except OSError as exc:
            raise CorpusError(f"{source!r} cannot be checked ({exc.strerror or exc})") from exc
        if stat.S_ISLNK(info.st_mode):
            raise CorpusError(f"{source!r} passes through a symbolic link to a folder ({path.name}); links to folders are never followed")
        if not stat.S_ISDIR(info.st_mode):
            raise CorpusError(f"{source!r} passes through {path.name}, which is not a folder")
    resolved_parent = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    if resolved_parent != real_root and real_root not in resolved_parent.parents:  # belt and braces
        raise CorpusError(f"{source!r} resolves outside the corpus folder")
    return root.joinpath(*pure.parts)


def inside_corpus(root: Path, source: str) -> bool:
    """True when `source` passes `corpus_path`."""
    try:
        corpus_path(root, source)
    except CorpusError:
        return False
    return True


class Corpus:
    """Documents under one folder, parsed and chunked, cached by (size, mtime) and content hash."""

    def __init__(
        self,
        root: Path,
        tokenizer: TokenCounter,
        chunk_tokens: int,
        chunk_overlap: int,
        limits: ParseLimits,
        follow_external_links: bool = False,
    ) -> None:
        self.root = root
        self._follow_external_links = follow_external_links
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
            entry, status = self._refreshed(path, source, old.get(source))
            if entry is not None:
                new[source] = entry
            if status == "added":
                added.append(source)
            elif status == "changed":
                changed.append(source)
        removed = tuple(sorted(set(old) - set(new)))
        self._entries = new
        return ScanReport(tuple(added), tuple(changed), removed)

    def rescan(self, sources: Iterable[str]) -> ScanReport:
        """Bring only these documents in line with the folder (added, edited or deleted): what another
        process reported changing, with no walk of the folder."""
        entries = dict(self._entries)
        added: list[str] = []
        changed: list[str] = []
        removed: list[str] = []
        for source in sorted(set(sources)):
            try:
                path = corpus_path(self.root, source)
            except CorpusError as exc:
                log.warning("ignoring a recorded change: %s", exc)
                if entries.pop(source, None) is not None:  # served before the path was swapped: drop it
                    removed.append(source)
                continue
            previous = entries.get(source)
            entry, status = self._refreshed(path, source, previous) if path.is_file() or path.is_symlink() else (None, "gone")
            if entry is None:
                if entries.pop(source, None) is not None:
                    removed.append(source)
                continue
            entries[source] = entry
            if status == "added":
                added.append(source)
            elif status == "changed":
                changed.append(source)
        self._entries = entries
        return ScanReport(tuple(added), tuple(changed), tuple(removed))

    def _refreshed(self, path: Path, source: str, previous: _Entry | None) -> tuple[_Entry | None, str]:
        """One file's entry after checking it: (entry, "same" | "added" | "changed"), or (None, "gone")."""
        refused: str | None = None
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                refused = self._refused_link(path)
                info = path.lstat() if refused else path.stat()
        except OSError:
            return None, "gone"  # deleted between listing and stat
        if previous and previous.mtime_ns == info.st_mtime_ns and previous.size == info.st_size:
            return previous, "same"
        if refused:
            entry = self._skipped(path, source, info, refused)
        else:
            entry = self._load(path, source, info.st_size, info.st_mtime_ns, info.st_mtime)
        if previous and previous.info.content_hash == entry.info.content_hash and entry.info.content_hash:
            return replace(previous, mtime_ns=entry.mtime_ns, size=entry.size), "same"  # touched, not edited
        return entry, ("changed" if previous else "added")

    def preload(self, stored: Mapping[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]) -> None:
        """Start from what a store kept: (mtime_ns, size, info, chunks) per source. The next scan keeps
        each one whose file still has that mtime and size, and parses the rest."""
        self._entries = {source: _Entry(info, chunks, mtime_ns, size) for source, (mtime_ns, size, info, chunks) in stored.items()}

    def kept(self) -> dict[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]:
        """What a store should keep: (mtime_ns, size, info, chunks) per source."""
        return {source: (e.mtime_ns, e.size, e.info, e.chunks) for source, e in self._entries.items()}

    def documents(self) -> list[DocumentInfo]:
        """Every file seen, served or skipped, sorted by path."""
        return [self._entries[k].info for k in sorted(self._entries)]

    def chunks(self) -> list[Chunk]:
        """Every chunk of every served document, in path order."""
        return [c for k in sorted(self._entries) for c in self._entries[k].chunks]

    def document_chunks(self) -> dict[DocumentKey, tuple[Chunk, ...]]:
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
        # os.walk lists folder links but never enters them (followlinks=False); every path still passes
        # the shared check, so the walk and the per-file rescans serve exactly the same files.
        for directory, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):  # hidden files, editor swap files and upload temp files
                    continue
                path = Path(directory) / name
                if inside_corpus(self.root, path.relative_to(self.root).as_posix()):
                    paths.append(path)
        return paths

    def _refused_link(self, path: Path) -> str | None:
        """Why a symbolic link is not followed, or None when it may be."""
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken symbolic link (its target does not exist or loops)"
        if self._follow_external_links:
            return None
        root = self.root.resolve()
        if target != root and root not in target.parents:
            return "symbolic link to a file outside the corpus folder (set RAG_FOLLOW_EXTERNAL_LINKS=true to allow)"
        return None

    def _skipped(self, path: Path, source: str, info: os.stat_result, reason: str) -> _Entry:
        kind = kind_of(path.name) or path.suffix.lower().lstrip(".") or "unknown"
        log.info("skipping %s: %s", source, reason)
        document = DocumentInfo(source, kind, info.st_size, 0, "skipped", reason, modified=info.st_mtime)
        return _Entry(document, (), info.st_mtime_ns, info.st_size)

    def _load(self, path: Path, source: str, size: int, mtime_ns: int, mtime: float) -> _Entry:
        kind = kind_of(path.name) or path.suffix.lower().lstrip(".") or "unknown"

        def skipped(reason: str, digest: str = "") -> _Entry:
            log.info("skipping %s: %s", source, reason)
            info = DocumentInfo(source, kind, size, 0, "skipped", reason, modified=mtime, content_hash=digest)
            return _Entry(info, (), mtime_ns, size)

        if kind_of(path.name) is None:
            return skipped(f"unsupported file type '{path.suffix or path.name}'")
        try:
            data = read_regular_file(path, self._limits.max_bytes)
        except UnsupportedDocument as exc:
            return skipped(exc.reason)
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


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, never more than `max_bytes` read whatever its size claims.

    Opened non-blocking and checked with fstat on the open descriptor, so a FIFO, a device or a socket
    under a document's name is refused at once instead of blocking or reading without end, even if the
    file was swapped between listing and opening. Raises UnsupportedDocument with the reason.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsupportedDocument(f"cannot be read ({exc.strerror or exc})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsupportedDocument(f"not a regular file ({_file_type(info.st_mode)}); only regular files are read")
        if info.st_size > max_bytes:
            raise UnsupportedDocument(too_large(info.st_size, max_bytes))
        pieces: list[bytes] = []
        total = 0
        while total <= max_bytes:
            try:
                piece = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            except OSError as exc:
                raise UnsupportedDocument(f"cannot be read ({exc.strerror or exc})") from exc
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
        if total > max_bytes:  # it grew after fstat, or its size lies (a /proc or FUSE file)
            raise UnsupportedDocument(
                f"more than {max_bytes / 2**20:.0f} MB could be read, over the limit (RAG_MAX_FILE_MB)"
            )
        return b"".join(pieces)
    finally:
        os.close(fd)


def too_large(size: int, limit: int) -> str:
    """Why a file of `size` bytes is refused under a limit of `limit` bytes."""
    return f"file is {size / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} MB (RAG_MAX_FILE_MB)"


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "a special file"
