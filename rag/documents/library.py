"""The document library: which files the corpus holds, adding documents safely, and deleting uploads.

The library owns the folder; the index (`rag.index`) only ever reads what the library reports.
Safety rules, each tested:
- no part of a user's file name reaches the file system except a sanitised stem;
- a file is size-checked before it is read, read with a hard cap, and parsed before anything is written;
- it is written to a hidden temporary file, fsynced and renamed into place, so a crash never leaves a
  half-written document;
- the same content twice is one document (content hash), across processes too;
- everything that changes the folder runs under one inter-process lock (`LibraryLock`), so the app and
  any number of `rag corpus add` share the folder; leftovers of a crash are removed under that lock, so a
  live writer's temporary file is never taken for one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Protocol

from rag.documents.corpus import TEMP_PREFIX, Corpus, DocumentKey, ScanReport, corpus_path, read_regular_file, too_large
from rag.errors import CorpusError, UnsupportedDocument
from rag.documents.parsing import MB, kind_of
from rag.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)

LOCK_NAME = ".rag-library.lock"  # hidden: never scanned as a document
CHANGES_NAME = ".rag-library.changes"  # what writers changed, in order: how other processes catch up
KEEP_CHANGES = 500
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"markdown": ".md", "text": ".txt", "html": ".html", "pdf": ".pdf", "docx": ".docx"}


@dataclass(frozen=True)
class UploadLimits:
    """Limits on what may be added to the corpus from outside the folder."""

    max_file_bytes: int = 25 * MB
    max_files: int = 10
    max_corpus_bytes: int = 500 * MB


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one file: added, duplicate (already in the corpus) or rejected, with numbers."""

    name: str  # as the user named it (for messages only)
    status: str  # "added" | "duplicate" | "rejected"
    source: str | None = None  # path relative to the corpus, once stored
    reason: str | None = None
    pages: int | None = None
    chunks: int = 0
    size_bytes: int = 0
    parse_ms: float = 0.0
    index_ms: float = 0.0
    pending: str | None = None  # stored, but not searchable yet: why (e.g. the search server is down)


@dataclass(frozen=True)
class PreparedUpload:
    """A file parsed and chunked in memory, ready to be written; nothing is on disk yet."""

    name: str
    data: bytes
    digest: str
    target_name: str
    info: DocumentInfo
    chunks: tuple[Chunk, ...]
    parse_ms: float


class DocumentLibrary(Protocol):
    """What the retriever needs of the folder of documents."""

    @property
    def root(self) -> Path:
        """The corpus folder."""
        ...

    def scan(self) -> ScanReport:
        """Bring the listing in line with the folder; return what changed."""
        ...

    def news(self) -> bool:
        """True when another process may have changed the folder (a cheap check)."""
        ...

    def preload(self, stored: Mapping[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]) -> None:
        """Start the listing from a store: (mtime_ns, size, info, chunks) per source."""
        ...

    def kept(self) -> dict[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]:
        """What a store should keep of the listing."""
        ...

    def catch_up(self) -> ScanReport:
        """Apply what other processes changed, without a walk when possible."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every file seen, served or skipped."""
        ...

    def document_chunks(self) -> Mapping[DocumentKey, tuple[Chunk, ...]]:
        """The chunks of every served document, keyed by (source, content hash)."""
        ...

    def prepare(self, name: str, data: bytes) -> PreparedUpload | UploadOutcome:
        """Validate and parse a new document without writing anything, or say why it is refused."""
        ...

    def commit(self, prepared: PreparedUpload) -> UploadOutcome:
        """Store a prepared document (atomically, under the inter-process lock)."""
        ...

    def remove(self, source: str) -> None:
        """Delete an uploaded document."""
        ...


class LibraryLock:
    """An exclusive `flock` on a file in the corpus folder, shared by every process that writes to it.

    `flock` locks are released by the kernel when their holder dies, so a crashed process never leaves
    the folder locked. Threads of one process take turns through a re-entrant thread lock first (a
    commit may run a cleanup while holding it).
    """

    def __init__(self, root: Path, timeout_s: float = 60.0) -> None:
        self._path = root / LOCK_NAME
        self._timeout_s = timeout_s
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the duration of the block (blocking: call it from a thread)."""
        if not self._threads.acquire(timeout=self._timeout_s):
            raise CorpusError(f"the corpus folder stayed locked by another task for {self._timeout_s:g} s")
        try:
            if self._depth == 0:
                self._fd = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None
        finally:
            self._threads.release()

    def _acquire(self) -> int:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise CorpusError(f"cannot open the corpus lock {self._path}: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise CorpusError(f"cannot lock the corpus folder: {exc.strerror or exc}") from exc
            if time.monotonic() > deadline:
                os.close(fd)
                raise CorpusError(f"the corpus folder stayed locked by another process for {self._timeout_s:g} s")
            time.sleep(0.05)


class Library:
    """The corpus folder: listing and parsing (through `Corpus`), adding and removing documents."""

    def __init__(self, corpus: Corpus, uploads_subdir: str, limits: UploadLimits) -> None:
        self.corpus = corpus
        self.uploads_dir = corpus.root / uploads_subdir
        self.limits = limits
        self.lock = LibraryLock(corpus.root)
        self._changes = corpus.root / CHANGES_NAME
        self._seen = -1  # the last change in our listing; -1 until the first scan
        self._changes_stat: tuple[int, int, int] | None = None

    @property
    def root(self) -> Path:
        """The corpus folder."""
        return self.corpus.root

    def scan(self) -> ScanReport:
        """Bring the listing in line with the folder (a walk); return what changed."""
        self._changes_stat = self._stat_changes()
        seq = self._read_changes()[0]
        report = self.corpus.scan()
        self._seen = max(self._seen, seq)
        return report

    def preload(self, stored: Mapping[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]) -> None:
        """Start the listing from a store: (mtime_ns, size, info, chunks) per source."""
        self.corpus.preload(stored)

    def kept(self) -> dict[str, tuple[int, int, DocumentInfo, tuple[Chunk, ...]]]:
        """What a store should keep of the listing."""
        return self.corpus.kept()

    # --- changes made by other processes ---------------------------------------------------------------
    # Every process that writes to the folder appends what it changed to one small file, under the lock.
    # A question stats that file (one system call) and, when it moved, rescans just the documents named
    # there: an upload through another process is searchable at this process's next question without a
    # walk of the folder. Edits made in the folder by hand come through the watcher (rag.documents.watching).
    def _stat_changes(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self._changes)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def _read_changes(self) -> tuple[int, list[tuple[int, str]]]:
        try:
            data = json.loads(self._changes.read_text(encoding="utf-8"))
            return int(data["seq"]), [(int(n), str(source)) for n, source in data["changes"]]
        except (OSError, ValueError, KeyError, TypeError):
            return 0, []

    def news(self) -> bool:
        """True when another process may have changed the folder since this listing caught up."""
        return self._stat_changes() != self._changes_stat

    def catch_up(self) -> ScanReport:
        """Apply the changes other processes recorded since we last looked (a full scan if too many)."""
        if self._seen < 0:
            return self.scan()
        self._changes_stat = self._stat_changes()
        seq, changes = self._read_changes()
        if seq <= self._seen:
            return ScanReport()
        if not changes or changes[0][0] > self._seen + 1:  # older changes already dropped from the file
            return self.scan()
        report = self.corpus.rescan(source for n, source in changes if n > self._seen)
        self._seen = seq
        return report

    def _record(self, source: str) -> None:
        """Append a change to the changes file (under the lock; written whole, renamed into place)."""
        seq, changes = self._read_changes()
        seq += 1
        changes = [*changes, (seq, source)][-KEEP_CHANGES:]
        payload = json.dumps({"seq": seq, "changes": changes}).encode()
        write_atomically(self.root, CHANGES_NAME, payload)
        self._seen = seq  # our own change is in our listing already
        self._changes_stat = self._stat_changes()

    def documents(self) -> list[DocumentInfo]:
        """Every file seen, served or skipped, sorted by path."""
        return self.corpus.documents()

    def document_chunks(self) -> Mapping[DocumentKey, tuple[Chunk, ...]]:
        """The chunks of every served document, keyed by (source, content hash)."""
        return self.corpus.document_chunks()

    def read_file(self, path: Path) -> bytes:
        """A local file's bytes for adding (`rag corpus add`): size-checked first, never read past the limit.

        Raises UnsupportedDocument with the reason (not a regular file, too large, unreadable).
        """
        return read_regular_file(path, self.limits.max_file_bytes)

    def prepare(self, name: str, data: bytes) -> PreparedUpload | UploadOutcome:
        """Validate and parse `data` in memory; the CPU- and memory-heavy part, run outside every lock."""
        shown = display_name(name)
        if len(data) > self.limits.max_file_bytes:
            return UploadOutcome(shown, "rejected", reason=too_large(len(data), self.limits.max_file_bytes),
                                 size_bytes=len(data))
        digest = content_hash(data)
        existing = self.corpus.find_by_hash(digest)  # a fast answer; commit() checks again under the lock
        if existing is not None:
            return _duplicate(shown, existing, len(data))
        started = time.perf_counter()
        try:
            target_name = stored_name(name, digest)
            source = (self.uploads_dir / target_name).relative_to(self.root).as_posix()
            info, chunks = self.corpus.parse_upload(source, data)
        except UnsupportedDocument as exc:
            return UploadOutcome(shown, "rejected", reason=exc.reason, size_bytes=len(data))
        parse_ms = (time.perf_counter() - started) * 1000
        return PreparedUpload(shown, data, digest, target_name, info, chunks, parse_ms)

    def commit(self, prepared: PreparedUpload) -> UploadOutcome:
        """Write a prepared document into the uploads folder and register it.

        Under the inter-process lock the folder is rescanned first, so a copy another process stored a
        moment ago counts as a duplicate, and the corpus budget counts its bytes. A failed write leaves
        nothing behind and raises CorpusError with the reason.
        """
        size = len(prepared.data)
        with self.lock.held():
            self.catch_up()  # what other processes stored, so their copy counts as a duplicate
            existing = self.corpus.find_by_hash(prepared.digest)
            if existing is not None:
                return _duplicate(prepared.name, existing, size)
            if self.corpus.total_bytes() + size > self.limits.max_corpus_bytes:
                return UploadOutcome(prepared.name, "rejected", size_bytes=size, reason=(
                    f"the corpus would exceed {self.limits.max_corpus_bytes / MB:.0f} MB (RAG_MAX_CORPUS_MB)"))
            try:  # the uploads folder must be a real folder of the corpus, never a link out of it
                corpus_path(self.root, prepared.info.source)
            except CorpusError as exc:
                raise CorpusError(f"could not store {prepared.name} in {self.uploads_dir}: {exc}") from exc
            try:
                path = write_atomically(self.uploads_dir, prepared.target_name, prepared.data)
            except OSError as exc:
                raise CorpusError(f"could not store {prepared.name} in {self.uploads_dir}: {exc.strerror or exc}") from exc
            self.corpus.adopt(path, prepared.info, prepared.chunks)
            self._record(prepared.info.source)
        return UploadOutcome(prepared.name, "added", prepared.info.source, None, prepared.info.pages,
                             len(prepared.chunks), size, prepared.parse_ms)

    def remove(self, source: str) -> None:
        """Delete an uploaded document's file; only files inside the uploads folder may go."""
        uploads = self.uploads_dir.relative_to(self.root).as_posix()
        if not source.startswith(uploads + "/"):
            raise CorpusError(f"{source} is not an uploaded document; only uploads can be deleted here")
        path = corpus_path(self.root, source)  # no "..", no link to a folder on the way
        with self.lock.held():
            if not (path.is_file() or path.is_symlink()):  # unlinking a link never touches its target
                raise CorpusError(f"{source} does not exist")
            try:
                path.unlink()
            except OSError as exc:
                raise CorpusError(f"could not delete {source}: {exc.strerror or exc}") from exc
            self.corpus.forget(source)
            self._record(source)

    def remove_leftovers(self) -> int:
        """Delete temporary files left by a crashed writer; returns how many.

        Writers hold the lock for as long as their temporary file exists, so every temporary file seen
        while holding it belongs to a process that died.
        """
        with self.lock.held():
            return remove_temporary_files(self.root)


def display_name(name: str) -> str:
    """The last path component of a user-supplied name, for messages (never used as a path)."""
    base = PureWindowsPath(PurePosixPath(name).name).name
    return base or name


def stored_name(name: str, digest: str) -> str:
    """A safe, unique file name: sanitised stem + content hash + the extension of the detected kind."""
    kind = kind_of(display_name(name))
    if kind is None:
        raise UnsupportedDocument(f"unsupported file type '{PurePosixPath(display_name(name)).suffix or name}'")
    stem = PurePosixPath(display_name(name)).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = _SAFE.sub("-", ascii_stem).strip("-._")[:60] or "document"
    return f"{safe}-{digest[:10]}{_EXTENSIONS[kind]}"


def readable_upload_name(source: str) -> str:
    """'uploads/travel-policy-0123456789.docx' -> 'travel-policy.docx': the name without the hash that
    `stored_name` adds, for labels (the full path stays in tooltips and messages)."""
    name = PurePosixPath(source).name
    return re.sub(r"-[0-9a-f]{10}(?=\.[A-Za-z0-9]+$)", "", name)


def content_hash(data: bytes) -> str:
    """SHA-256 of the bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def write_atomically(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` to directory/name via a hidden temporary file, fsync, and an atomic rename."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    temp = directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def remove_temporary_files(root: Path) -> int:
    """Delete upload temp files under `root`; returns how many. Call under the library lock."""
    removed = 0
    if not root.is_dir():
        return 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if name.startswith(TEMP_PREFIX) and stat.S_ISREG(path.lstat().st_mode):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def _duplicate(name: str, existing: str, size: int) -> UploadOutcome:
    return UploadOutcome(name, "duplicate", source=existing, reason=f"already in the corpus as {existing}", size_bytes=size)
