"""What parsing and analysis produced, kept in the data folder: a start or a CLI command with an unchanged
corpus loads it instead of re-parsing every document.

One file per set of settings that shape it (chunk size and overlap, tokenizer, analyzer, corpus folder):
documents with their stat identity (mtime, size) and content hash, their chunks, and the analysed terms
of each chunk. It is a cache, never the truth: the folder is still checked against it (a changed or new
file is parsed, a deleted one dropped), a file that does not load or does not match is rebuilt from the
folder and rewritten, and deleting it is always safe. It is read with an unpickler that refuses every
class, so a tampered file can hold data but never run code.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from rag.private import DIR_MODE, private_dir, write_private
from rag.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)

STORE_VERSION = 1


@dataclass(frozen=True)
class StoredDocument:
    """One document as the corpus and the index had it."""

    mtime_ns: int
    size: int
    info: DocumentInfo
    chunks: tuple[Chunk, ...]
    terms: tuple[tuple[str, ...], ...]  # analysed terms of each chunk (index_text)


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the index store may hold plain data only, not {module}.{name}")


def fingerprint(**shaping: object) -> str:
    """A short digest of everything that shapes the stored chunks and terms."""
    text = repr(sorted((k, repr(v)) for k, v in shaping.items()))
    return hashlib.sha256(f"{STORE_VERSION}:{text}".encode()).hexdigest()[:16]


class DocumentStore:
    """Load and save the documents of one corpus under one fingerprint."""

    def __init__(self, folder: Path, key: str) -> None:
        self.path = folder / f"documents-{key}.pickle"
        self.key = key
        self.languages: frozenset[str] = frozenset()  # languages of the stored documents (rag.index.languages codes)
        self.unwritable: str | None = None  # why the store cannot be written (said once; work from memory)

    def load(self) -> dict[str, StoredDocument]:
        """The stored documents, or {} when there is no store or it cannot be trusted (logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("index store %s unreadable (%s): rebuilding from the folder", self.path, exc)
            return {}
        try:
            data = _DataOnly(io.BytesIO(raw)).load()
            if not isinstance(data, dict) or data.get("version") != STORE_VERSION or data.get("key") != self.key:
                raise ValueError("written by another version or for other settings")
            documents = {source: _document(row) for source, row in data["documents"].items()}
            self.languages = frozenset(str(code) for code in data.get("languages", ()))
            return documents
        except Exception as exc:  # noqa: BLE001 - any defect means: do not trust it
            log.warning("index store %s ignored (%s): rebuilding from the folder", self.path, exc)
            return {}

    def save(self, documents: dict[str, StoredDocument], languages: frozenset[str] = frozenset()) -> None:
        """Write the store whole (a temporary file renamed over the old one: never half-written)."""
        rows = {source: (d.mtime_ns, d.size, astuple(d.info), [astuple(c) for c in d.chunks], d.terms)
                for source, d in documents.items()}
        payload = pickle.dumps({"version": STORE_VERSION, "key": self.key, "documents": rows,
                                "languages": sorted(languages)}, protocol=5)
        try:
            private_dir(self.path.parent)
            write_private(self.path, payload)
        except OSError as exc:
            if self.unwritable is None:  # a cache: say so once, then keep working from memory
                log.warning("index store %s cannot be written (%s): working from memory; every start parses "
                            "the folder again until it can", self.path, exc.strerror or exc)
            self.unwritable = f"{self.path.parent}: {exc.strerror or exc}"
            return
        self.unwritable = None
        for old in self.path.parent.glob("documents-*.pickle"):  # other settings or code: never read again
            if old != self.path:
                old.unlink(missing_ok=True)


_INFO_FIELDS = len(fields(DocumentInfo))
_CHUNK_FIELDS = len(fields(Chunk))


def _document(row: Any) -> StoredDocument:
    mtime_ns, size, info, chunks, terms = row
    if len(info) != _INFO_FIELDS or any(len(c) != _CHUNK_FIELDS for c in chunks) or len(terms) != len(chunks):
        raise ValueError("a document does not have the expected shape")
    return StoredDocument(int(mtime_ns), int(size), DocumentInfo(*info), tuple(Chunk(*c) for c in chunks),
                          tuple(tuple(t) for t in terms))


class EngineStore:
    """bm25s indexes (body and titles) saved for one exact set of documents, memory-mapped back: a start
    with an unchanged large corpus does not rebuild them. Keyed by every (source, content hash) in
    order and the scoring parameters; anything else is a miss, and a folder that does not load is one too."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._warned = False

    @staticmethod
    def key(documents: list[tuple[str, str]], **params: object) -> str:
        digest = hashlib.sha256(repr((documents, sorted(params.items()))).encode()).hexdigest()
        return digest[:24]

    def path(self, key: str) -> Path:
        return self.folder / f"engines-{key}"

    def load(self, key: str) -> tuple[Any, Any] | None:
        from rag.index.engines import BM25sEngine

        path = self.path(key)
        if not path.is_dir():
            return None
        try:
            return BM25sEngine.load(path / "body"), BM25sEngine.load(path / "titles")
        except Exception as exc:  # noqa: BLE001 - a defective index is rebuilt, never trusted
            log.warning("saved engine %s ignored (%s): rebuilding", path, exc)
            return None

    def save(self, key: str, body: Any, titles: Any) -> None:
        """Write both engines into a temporary folder renamed into place; older saves are removed."""
        import shutil

        target = self.path(key)
        if target.is_dir():
            return
        temporary = self.folder / f".engines-{key}.{os.getpid()}.tmp"
        try:
            private_dir(self.folder)
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(mode=DIR_MODE)  # owner-only: what bm25s writes inside inherits no protection
            os.chmod(temporary, DIR_MODE)
            (temporary / "body").mkdir()
            (temporary / "titles").mkdir()
            body.save(temporary / "body")
            titles.save(temporary / "titles")
            os.replace(temporary, target)
        except OSError as exc:
            if not self._warned:
                log.warning("engine not saved in %s (%s): working from memory; the next start rebuilds it",
                            self.folder, exc.strerror or exc)
                self._warned = True
            shutil.rmtree(temporary, ignore_errors=True)
            return
        for old in self.folder.glob("engines-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
