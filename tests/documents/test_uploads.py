"""Adding documents: every bad input gets a specific reason and leaves the corpus and index intact."""

import asyncio
from unittest.mock import patch
import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import CorpusError
from rag.documents.library import LOCK_NAME, UploadOutcome, remove_temporary_files, stored_name, write_atomically
from rag.documents.library import UploadLimits
from rag.documents.parsing import ParseLimits
from rag.index.retriever import Retriever
from rag.runtime import build_library, build_retriever
from rag.types import ParsedDocument
from rag.fakes.samples import make_docx, make_encrypted_pdf, make_pdf, make_zip_bomb_docx


@pytest.fixture
def seeded(settings: Settings, corpus_dir: Path) -> Settings:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    return settings


def _files(root: Path) -> set[str]:
    """Every file under root except the library's lock file (created once, empty, never a document)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != LOCK_NAME}


async def _add(settings: Settings, name: str, data: bytes, limits: UploadLimits | None = None) -> tuple[Retriever, UploadOutcome]:
    library = build_library(settings)
    if limits is not None:
        library.limits = limits
    retriever = build_retriever(settings, library)
    await retriever.refresh()
    outcome = await retriever.add_upload(name, data)
    return retriever, outcome


async def test_added_document_is_searchable_at_once_with_numbers(seeded: Settings) -> None:
    pdf = make_pdf([f"Page {i} explains the quarterly zebra migration report." for i in range(1, 4)])
    retriever, outcome = await _add(seeded, "Report Q3.pdf", pdf)
    assert outcome.status == "added" and outcome.pages == 3 and outcome.chunks == 3
    assert outcome.source is not None and outcome.source.startswith("uploads/Report-Q3-") and outcome.source.endswith(".pdf")
    assert outcome.parse_ms > 0 and outcome.index_ms > 0
    snapshot = retriever.snapshot
    assert snapshot is not None and any(c.source == outcome.source for c in snapshot.chunks)  # no refresh needed
    result = await retriever.search("zebra migration", 3)
    assert result.passages[0].chunk.source == outcome.source and result.passages[0].chunk.page in (1, 2, 3)


@pytest.mark.parametrize("name", ["../../etc/evil.md", "/etc/passwd.md", "..\\..\\windows\\evil.md", "sub/dir/../x.md"])
async def test_user_paths_never_reach_the_file_system(seeded: Settings, corpus_dir: Path, name: str) -> None:
    before = _files(corpus_dir.parent)
    _, outcome = await _add(seeded, name, b"# Notes\n\nharmless text")
    assert outcome.status == "added"
    created = {p for p in _files(corpus_dir.parent) - before
               if p.startswith("corpus/") and not Path(p).name.startswith(".")}  # not the changes file or the store
    assert len(created) == 1
    (path,) = created
    assert path.startswith("corpus/uploads/") and ".." not in path and "/etc/" not in path


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("nopages.pdf", make_pdf([]), "PDF has no pages"),
        ("locked.pdf", make_encrypted_pdf(["secret"], "pw"), "encrypted PDF (a password is required)"),
        ("scan.pdf", make_pdf(["", ""]), "no extractable text; OCR is not supported"),
        ("broken.docx", b"PK\x03\x04garbage", "corrupt DOCX"),
        ("bomb.docx", make_zip_bomb_docx(250), "zip bomb"),
        ("photo.txt", bytes(range(256)) * 50, "binary data, not text"),
        ("photo.md", b"\x89PNG\r\n\x1a\n" + bytes(4000), "binary data"),
        ("tool.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
    ],
)
async def test_bad_files_are_rejected_with_a_reason_and_change_nothing(
    seeded: Settings, corpus_dir: Path, name: str, data: bytes, reason: str
) -> None:
    before = _files(corpus_dir)
    retriever, outcome = await _add(seeded, name, data)
    assert outcome.status == "rejected" and reason in (outcome.reason or "")
    assert _files(corpus_dir) == before
    assert [d.source for d in retriever.library.documents()] == ["guide.md"]
    assert (await retriever.search("ollama port", 3)).passages[0].chunk.source == "guide.md"


async def test_file_over_the_size_limit(seeded: Settings, corpus_dir: Path) -> None:
    before = _files(corpus_dir)
    _, outcome = await _add(seeded, "big.md", b"word " * 5000, UploadLimits(max_file_bytes=10_000))
    assert outcome.status == "rejected" and "over the limit of" in (outcome.reason or "") and "RAG_MAX_FILE_MB" in (outcome.reason or "")
    assert _files(corpus_dir) == before


async def test_corpus_size_budget(seeded: Settings) -> None:
    _, outcome = await _add(seeded, "a.md", b"# A\n\n" + b"text " * 100, UploadLimits(max_corpus_bytes=200))
    assert outcome.status == "rejected" and "RAG_MAX_CORPUS_MB" in (outcome.reason or "")


async def test_the_same_file_twice_is_one_document(seeded: Settings, corpus_dir: Path) -> None:
    retriever, first = await _add(seeded, "notes.md", b"# Notes\n\nunique content here")
    second = await retriever.add_upload("copy of notes.md", b"# Notes\n\nunique content here")
    assert first.status == "added" and second.status == "duplicate" and second.source == first.source
    assert len(list((corpus_dir / "uploads").iterdir())) == 1
    # A file already in the corpus folder counts too.
    third = await retriever.add_upload("guide.md", (corpus_dir / "guide.md").read_bytes())
    assert third.status == "duplicate" and third.source == "guide.md"


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
async def test_legacy_encodings_are_decoded(seeded: Settings, encoding: str) -> None:
    text = "# Café\n\nLa crème brûlée du chef, très appréciée à l'hôtel."
    retriever, outcome = await _add(seeded, f"menu-{encoding}.md", text.encode(encoding))
    assert outcome.status == "added"
    passage = (await retriever.search("crème brûlée", 1)).passages[0]
    assert passage.chunk.source == outcome.source and "crème brûlée" in passage.chunk.text


async def test_an_upload_is_not_parsed_twice(seeded: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.documents.corpus

    calls: list[str] = []
    real = rag.documents.corpus.parse_bytes
    def parse(data: bytes, name: str, limits: ParseLimits) -> ParsedDocument:
        calls.append(name)
        return real(data, name, limits)

    monkeypatch.setattr(rag.documents.corpus, "parse_bytes", parse)
    retriever, outcome = await _add(seeded, "n.md", b"# N\n\nnew words")
    assert outcome.source is not None and calls.count(outcome.source) == 1
    await retriever.refresh()  # the folder scan adopts the file without parsing it again
    assert calls.count(outcome.source) == 1


def test_stored_names_are_safe_and_typed_by_extension() -> None:
    assert stored_name("Ünïcödé report (final).PDF", "abcdef1234567890") == "Unicode-report-final-abcdef1234.pdf"
    assert stored_name("../../x.markdown", "0" * 64) == "x-0000000000.md"
    assert stored_name("...md", "1" * 64).startswith("document-")


def test_a_crash_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(tmp_path, "doc.md", b"data")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_crash_are_removed_at_start_up(corpus_dir: Path) -> None:
    (corpus_dir / "uploads").mkdir()
    (corpus_dir / "uploads" / ".tmp-1234").write_bytes(b"half a document")
    (corpus_dir / "uploads" / "kept.md").write_text("# kept")
    assert remove_temporary_files(corpus_dir) == 1
    assert [p.name for p in (corpus_dir / "uploads").iterdir()] == ["kept.md"]


async def test_remove_only_deletes_uploads(seeded: Settings, corpus_dir: Path) -> None:
    retriever, outcome = await _add(seeded, "temp.md", b"# Temp\n\nephemeral kiwi words")
    assert outcome.source
    with pytest.raises(CorpusError, match="only uploads can be deleted"):
        await retriever.remove_document("guide.md")
    with pytest.raises(CorpusError):
        await retriever.remove_document("uploads/../guide.md")
    assert (corpus_dir / "guide.md").exists()
    await retriever.remove_document(outcome.source)
    assert not (corpus_dir / outcome.source).exists()
    assert (await retriever.search("ephemeral kiwi", 3)).passages == ()


async def test_concurrent_uploads_and_questions_always_see_a_complete_index(seeded: Settings) -> None:
    retriever = build_retriever(seeded)
    await retriever.refresh()
    docs = {f"doc{i}.md": f"# Doc {i}\n\n" + "\n\n".join(f"Paragraph {j} about topic{i} and shared words." for j in range(40))
            for i in range(6)}

    async def upload(name: str, text: str) -> None:
        outcome = await retriever.add_upload(name, text.encode())
        assert outcome.status == "added"

    async def ask() -> None:
        for _ in range(15):
            snapshot = retriever.snapshot
            assert snapshot is not None
            per_source: dict[str, int] = {}
            for chunk in snapshot.chunks:
                per_source[chunk.source] = per_source.get(chunk.source, 0) + 1
            counts = {d.source: d.chunks for d in retriever.library.documents() if d.status == "ok"}
            for source, n in per_source.items():  # every document in the snapshot is listed, and there whole
                assert source in counts and n == counts[source]
            await retriever.search("shared words", 5)
            await asyncio.sleep(0)

    await asyncio.gather(*(upload(n, t) for n, t in docs.items()), ask(), ask())
    for i in range(6):
        result = await retriever.search(f"topic{i}", 1)
        assert result.passages and result.passages[0].chunk.title == f"Doc {i}"


async def test_focused_search_serves_the_attached_file_even_without_matching_words(seeded: Settings) -> None:
    retriever, outcome = await _add(seeded, "minutes.docx", make_docx([("Heading 1", "Minutes"), ("", "The board approved the budget.")]))
    assert outcome.source
    result = await retriever.search("summarize the file I attached", 5, frozenset({outcome.source}))
    assert [p.chunk.source for p in result.passages] == [outcome.source] * len(result.passages)
    assert any("approved the budget" in p.chunk.text for p in result.passages)


async def test_another_processs_upload_seen_during_a_refused_upload_still_reaches_the_index(seeded: Settings, corpus_dir: Path) -> None:
    retriever, _ = await _add(seeded, "notes.md", b"# Notes\n\nfirst upload")
    other = build_library(seeded)  # another process (`rag corpus add`) on the same folder
    prepared = other.prepare("fresh.md", b"# Fresh\n\nnarwhal sightings this week")
    assert not isinstance(prepared, UploadOutcome) and other.commit(prepared).status == "added"
    # The same bytes again here: unknown to this process until its commit catches up under the lock.
    duplicate = await retriever.add_upload("again.md", b"# Fresh\n\nnarwhal sightings this week")
    assert duplicate.status == "duplicate"
    with patch.object(retriever.library, "news", return_value=False):  # only the commit's catch-up may tell
        result = await retriever.search("narwhal sightings", 3)
    assert result.passages and result.passages[0].chunk.source.startswith("uploads/fresh-")
