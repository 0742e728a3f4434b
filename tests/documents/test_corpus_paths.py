"""Every path from any source resolves inside the corpus by one check (issue 21, finding 1).

The attack: a folder link `CORPUS/linkdir -> /elsewhere` and a change log naming `linkdir/secret.md`
made the app index and serve a file of the host. Each source of paths is tested: the walk, the change log
other processes write, watcher events, uploads and deletions.
"""

import json
import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.documents.corpus import corpus_path, inside_corpus
from rag.errors import CorpusError
from rag.documents.library import CHANGES_NAME
from rag.runtime import build_library, build_retriever
from rag.documents.watching import is_document_change

SECRET = "the launch code is 0000 and only root may read it"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    (folder / "deeper").mkdir(parents=True)
    (folder / "secret.md").write_text(f"# Secret\n\n{SECRET}\n")
    (folder / "deeper" / "secret.md").write_text(f"# Deeper secret\n\n{SECRET}\n")
    return folder


def _record(corpus: Path, *sources: str, seq: int = 1) -> None:
    changes = [[seq - len(sources) + 1 + i, s] for i, s in enumerate(sources)]
    (corpus / CHANGES_NAME).write_text(json.dumps({"seq": seq, "changes": changes}))


@pytest.mark.parametrize("source", [
    "linkdir/secret.md", "linkdir/deeper/secret.md", "real/linkdir/secret.md", "../elsewhere/secret.md",
    "/etc/passwd", "real/../../elsewhere/secret.md", ".hidden/secret.md", "real/.git/config", "a//b.md",
    "./guide.md", "guide.md/", "", "nul\x00.md",
])
def test_the_shared_check_refuses_every_way_out(corpus_dir: Path, elsewhere: Path, source: str) -> None:
    (corpus_dir / "real").mkdir()
    (corpus_dir / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    (corpus_dir / "real" / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CorpusError):
        corpus_path(corpus_dir, source)
    assert not inside_corpus(corpus_dir, source)


def test_the_shared_check_accepts_plain_paths_existing_or_not(corpus_dir: Path) -> None:
    (corpus_dir / "real" / "sub").mkdir(parents=True)
    assert corpus_path(corpus_dir, "real/sub/a.md") == corpus_dir / "real" / "sub" / "a.md"
    assert inside_corpus(corpus_dir, "not-yet/written.md")
    assert inside_corpus(corpus_dir, "guide.md")


def test_a_folder_link_inside_the_corpus_is_refused_too(corpus_dir: Path) -> None:
    # The walk never enters folder links, so no per-file path may pass through one either.
    (corpus_dir / "real").mkdir()
    (corpus_dir / "real" / "doc.md").write_text("# Doc\n\nkiwi")
    (corpus_dir / "alias").symlink_to(corpus_dir / "real", target_is_directory=True)
    assert not inside_corpus(corpus_dir, "alias/doc.md")


@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize("source", ["linkdir/secret.md", "linkdir/deeper/secret.md", "sub/linkdir/secret.md"])
def test_the_change_log_cannot_name_a_file_behind_a_folder_link(corpus_dir: Path, elsewhere: Path, source: str,
                                                                 follow: bool) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    (corpus_dir / "sub").mkdir()
    (corpus_dir / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    (corpus_dir / "sub" / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    settings = Settings(corpus_dir=corpus_dir, follow_external_links=follow, _env_file=None)
    retriever = build_retriever(settings)
    retriever.warm_up()
    _record(corpus_dir, source, "guide.md", seq=2)  # another "process" reports both
    library = retriever.library
    report = library.catch_up()
    assert source not in report.added
    assert {d.source for d in library.documents()} == {"guide.md"}
    assert not any(SECRET in c.text for chunks in library.document_chunks().values() for c in chunks)


def test_a_path_swapped_for_a_folder_link_after_indexing_is_dropped(corpus_dir: Path, elsewhere: Path) -> None:
    (corpus_dir / "team").mkdir()
    (corpus_dir / "team" / "secret.md").write_text("# Team\n\nharmless notes")
    library = build_library(Settings(corpus_dir=corpus_dir, _env_file=None))
    library.scan()
    assert "team/secret.md" in {d.source for d in library.documents()}
    (corpus_dir / "team" / "secret.md").unlink()
    (corpus_dir / "team").rmdir()
    (corpus_dir / "team").symlink_to(elsewhere, target_is_directory=True)
    _record(corpus_dir, "team/secret.md", seq=1)
    report = library.catch_up()
    assert report.removed == ("team/secret.md",)
    assert library.documents() == []
    library.scan()  # the full walk agrees
    assert library.documents() == []


def test_watcher_events_through_a_folder_link_or_hidden_files_are_ignored(corpus_dir: Path, elsewhere: Path) -> None:
    (corpus_dir / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    assert not is_document_change(str(corpus_dir / "linkdir" / "secret.md"), corpus_dir)
    assert not is_document_change(str(corpus_dir / CHANGES_NAME), corpus_dir)
    assert not is_document_change(str(corpus_dir / ".tmp-upload"), corpus_dir)
    assert not is_document_change(str(elsewhere / "secret.md"), corpus_dir)
    assert is_document_change(str(corpus_dir / "guide.md"), corpus_dir)


def test_uploads_never_land_behind_a_linked_uploads_folder(corpus_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside-uploads"
    target.mkdir()
    (corpus_dir / "uploads").symlink_to(target, target_is_directory=True)
    library = build_library(Settings(corpus_dir=corpus_dir, _env_file=None))
    library.scan()
    prepared = library.prepare("notes.md", b"# Notes\n\nkiwi facts")
    assert not isinstance(prepared, type(None))
    with pytest.raises(CorpusError, match="symbolic link to a folder"):
        library.commit(prepared)  # type: ignore[arg-type]
    assert list(target.iterdir()) == []


def test_deletions_never_reach_behind_a_linked_uploads_folder(corpus_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep.md").write_text("keep me")
    (corpus_dir / "uploads").symlink_to(target, target_is_directory=True)
    library = build_library(Settings(corpus_dir=corpus_dir, _env_file=None))
    library.scan()
    for source in ("uploads/keep.md", "uploads/../uploads/keep.md"):
        with pytest.raises(CorpusError):
            library.remove(source)
    assert (target / "keep.md").read_text() == "keep me"


def test_deleting_an_upload_that_became_a_file_link_removes_the_link_only(corpus_dir: Path, tmp_path: Path) -> None:
    (corpus_dir / "uploads").mkdir()
    precious = tmp_path / "precious.md"
    precious.write_text("keep me")
    (corpus_dir / "uploads" / "x.md").symlink_to(precious)
    library = build_library(Settings(corpus_dir=corpus_dir, _env_file=None))
    library.scan()
    library.remove("uploads/x.md")
    assert precious.read_text() == "keep me" and not os.path.lexists(corpus_dir / "uploads" / "x.md")
