"""The persisted corpus: a second start loads instead of parsing, a bad store is rebuilt, an upload is
applied incrementally with the scores of a full rebuild, for both engines."""

from __future__ import annotations

import asyncio
import pickle
import threading
from pathlib import Path

import pytest

import rag.documents.corpus
import rag.index.engines
import rag.index.search
from rag.config import Settings
from rag.runtime import build_retriever


def _corpus(corpus_dir: Path, n: int = 30) -> None:
    for i in range(n):
        (corpus_dir / f"doc{i}.md").write_text(f"# Document {i}\n\nWords about topic{i % 7} and shared words {i}.\n")


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = rag.documents.corpus.parse_bytes

    def counting(data: bytes, name: str, limits: object) -> object:
        seen.append(name)
        return real(data, name, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(rag.documents.corpus, "parse_bytes", counting)
    return seen


def test_a_second_start_parses_nothing_and_a_changed_file_only_it(settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _corpus(corpus_dir)
    first = build_retriever(settings)
    first.warm_up()
    parses = _parses(monkeypatch)
    second = build_retriever(settings)
    second.warm_up()
    assert parses == []  # everything came from the store
    (corpus_dir / "doc3.md").write_text("# Document 3\n\nRewritten about zebras.\n")
    third = build_retriever(settings)
    third.warm_up()
    assert parses == ["doc3.md"]
    result = third.index.search("zebras", 3)
    assert result.passages[0].chunk.source == "doc3.md"


def test_a_corrupt_or_tampered_store_is_rebuilt_never_trusted(settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _corpus(corpus_dir)
    retriever = build_retriever(settings)
    retriever.warm_up()
    assert retriever.store is not None
    path = retriever.store.path
    for bad in (b"not a pickle", pickle.dumps(Path("/etc/passwd")), pickle.dumps({"version": 1, "key": "other"})):
        path.write_bytes(bad)
        parses = _parses(monkeypatch)
        again = build_retriever(settings)
        again.warm_up()
        assert len(parses) == 30  # rebuilt from the folder
        assert again.index.search("topic3", 3).passages
    assert path.read_bytes()[:2] == b"\x80\x05"  # and written again, whole


def test_saved_bm25s_engines_are_loaded_not_rebuilt(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(corpus_dir=corpus_dir, engine="bm25s", _env_file=None)
    _corpus(corpus_dir)
    first = build_retriever(settings)
    first.warm_up()
    expected = [(p.chunk.source, round(p.score, 5)) for p in first.index.search("shared words topic2", 5).passages]
    built: list[str] = []
    real = rag.index.engines.build_engine

    def counting(name: str, *args: object, **kwargs: object) -> object:
        built.append(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rag.index.search, "build_engine", counting)  # what build_index calls
    second = build_retriever(settings)
    second.warm_up()
    assert built == []
    (corpus_dir / "doc0.md").write_text("# Document 0\n\nchanged\n")  # another set of documents: rebuilt
    build_retriever(settings).warm_up()
    assert built == ["bm25s", "bm25s"]  # body and titles
    assert [(p.chunk.source, round(p.score, 5)) for p in second.index.search("shared words topic2", 5).passages] == expected


@pytest.mark.parametrize("engine", ["rank-bm25", "bm25s"])
async def test_an_upload_and_a_deletion_score_exactly_as_a_full_rebuild(corpus_dir: Path, engine: str) -> None:
    settings = Settings(corpus_dir=corpus_dir, engine=engine, _env_file=None)
    _corpus(corpus_dir)
    retriever = build_retriever(settings)
    retriever.warm_up()
    outcome = await retriever.add_upload("extra.md", b"# Extra\n\nshared words about topic2 and zebras\n")
    assert outcome.status == "added" and retriever.index.segmented  # applied without a rebuild
    await retriever.remove_document(outcome.source or "")
    second = await retriever.add_upload("more.md", b"# More\n\ntopic2 topic2 shared\n")
    assert retriever.index.segmented
    rebuilt = build_retriever(settings)
    rebuilt.warm_up()
    for query in ("shared words topic2", "zebras", "topic2"):
        got = retriever.index.search(query, 10)
        want = rebuilt.index.search(query, 10)
        assert [p.chunk.source for p in got.passages] == [p.chunk.source for p in want.passages]
        assert [p.score for p in got.passages] == pytest.approx([p.score for p in want.passages], rel=1e-6)
        assert got.signals.weighted_coverage == pytest.approx(want.signals.weighted_coverage)
    await retriever.settled()  # the engine rebuilt in the background: same results, engine speed again
    assert not retriever.index.segmented
    merged = retriever.index.search("topic2", 10)
    assert [p.chunk.source for p in merged.passages] == [p.chunk.source for p in rebuilt.index.search("topic2", 10).passages]
    assert second.source in {p.chunk.source for p in merged.passages}


async def test_another_processs_upload_is_found_at_the_next_question_without_a_walk(settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.documents.library import UploadOutcome
    from rag.runtime import build_library

    _corpus(corpus_dir)
    library = build_library(settings)
    retriever = build_retriever(settings, library)
    retriever.warm_up()
    walks: list[int] = []
    real_scan = library.corpus.scan

    def counted() -> object:
        walks.append(1)
        return real_scan()

    monkeypatch.setattr(library.corpus, "scan", counted)
    assert (await retriever.search("okapi census", 3)).passages == ()
    other = build_library(settings)  # `rag corpus add`, or another app process
    prepared = other.prepare("okapi.md", b"# Okapi\n\nThe okapi census counted 4,412 animals.\n")
    assert not isinstance(prepared, UploadOutcome) and other.commit(prepared).status == "added"
    found = await retriever.search("okapi census", 3)
    assert found.passages and found.passages[0].chunk.source.startswith("uploads/okapi-")
    assert walks == []  # caught up from the changes file: only that document was read
    other.remove(found.passages[0].chunk.source)
    assert (await retriever.search("okapi census", 3)).passages == ()
    assert walks == []


def test_only_document_changes_wake_the_watcher(tmp_path: Path) -> None:
    from rag.documents.watching import is_document_change

    assert is_document_change(str(tmp_path / "guide.md"), tmp_path)
    assert is_document_change(str(tmp_path / "sub" / "notes.pdf"), tmp_path)
    for own in (".rag-library.lock", ".rag-library.changes", "uploads/.tmp-123", ".git/HEAD"):
        assert not is_document_change(str(tmp_path / own), tmp_path)
    assert not is_document_change("/etc/passwd", tmp_path)


async def test_a_change_while_the_merge_writes_the_store_is_merged_too(corpus_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The race CI hit once: an upload landing while the background merge wrote the store saw that merge
    # still running, started none, and the index kept scoring from segments after the merge ended.
    settings = Settings(corpus_dir=corpus_dir, engine="rank-bm25", _env_file=None)
    _corpus(corpus_dir)
    retriever = build_retriever(settings)
    retriever.warm_up()
    writing, release = threading.Event(), threading.Event()
    real_save = retriever.save_store

    def slow_save() -> None:
        writing.set()
        release.wait(10)
        real_save()

    monkeypatch.setattr(retriever, "save_store", slow_save)
    await retriever.add_upload("first.md", b"# First\n\nzebras and topic2\n")
    await asyncio.to_thread(writing.wait, 10)  # the merge is done and writing the store
    assert not retriever.index.segmented
    second = await retriever.add_upload("second.md", b"# Second\n\ngiraffes\n")
    assert retriever.index.segmented
    release.set()
    await retriever.settled()
    assert not retriever.index.segmented
    assert [p.chunk.source for p in retriever.index.search("giraffes", 3).passages] == [second.source]
