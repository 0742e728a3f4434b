"""Adding documents to the corpus from outside the folder (chat uploads, `rag corpus add`).

Safety rules, each tested: no part of the user's file name reaches the file system except a sanitised
stem; a file is parsed and validated *before* anything is written; it is written to a hidden temporary
file and renamed into place (a crash leaves no half-written document, and leftovers are removed at
start-up); the same content twice is one document (content hash).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.corpus import TEMP_PREFIX
from rag.errors import UnsupportedDocument
from rag.parsing import MB, kind_of

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"markdown": ".md", "text": ".txt", "html": ".html", "pdf": ".pdf", "docx": ".docx"}


@dataclass(frozen=True)
class UploadLimits:
    """Limits on what may be added (from Settings)."""

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
    """Delete upload temp files left by a crash; returns how many."""
    removed = 0
    if not root.is_dir():
        return 0
    for directory, _, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                (Path(directory) / name).unlink(missing_ok=True)
                removed += 1
    return removed
