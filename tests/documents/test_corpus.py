import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.documents.corpus import Corpus
from rag.documents.parsing import ParseLimits
from rag.types import ParsedDocument
from rag.runtime import build_library
from rag.fakes.samples import make_encrypted_pdf, make_pdf


def _corpus(settings: Settings) -> Corpus:
    return build_library(settings).corpus


def test_loads_every_supported_type_recursively(settings: Settings, corpus_dir: Path) -> None:
    (corpus_dir / "a.md").write_text("# A\n\nalpha")
    (corpus_dir / "sub" / "deeper").mkdir(parents=True)
    (corpus_dir / "sub" / "b.txt").write_text("beta")
    (corpus_dir / "sub" / "deeper" / "c.html").write_text("<h1>C</h1><p>gamma</p>")
    (corpus_dir / "sub" / "d.pdf").write_bytes(make_pdf(["delta"]))
    corpus = _corpus(settings)
    report = corpus.scan()
    assert sorted(report.added) == ["a.md", "sub/b.txt", "sub/d.pdf", "sub/deeper/c.html"]
    assert {d.source: d.status for d in corpus.documents()} == dict.fromkeys(report.added, "ok")
    assert {c.text.split()[-1] for c in corpus.chunks()} >= {"alpha", "beta", "gamma", "delta"}


def test_bad_documents_are_listed_with_reasons_and_the_rest_is_served(settings: Settings, corpus_dir: Path) -> None:
    (corpus_dir / "good.md").write_text("# Good\n\nuseful text")
    (corpus_dir / "locked.pdf").write_bytes(make_encrypted_pdf(["secret"], "pw"))
    (corpus_dir / "empty.txt").write_bytes(b"")
    (corpus_dir / "image.txt").write_bytes(bytes(range(256)) * 10)
    (corpus_dir / "notes.xyz").write_text("?")
    (corpus_dir / ".hidden.md").write_text("never listed")
    corpus = _corpus(settings)
    corpus.scan()
    docs = {d.source: d for d in corpus.documents()}
    assert set(docs) == {"good.md", "locked.pdf", "empty.txt", "image.txt", "notes.xyz"}
    assert docs["good.md"].status == "ok" and docs["good.md"].chunks == 1
    assert docs["locked.pdf"].reason == "encrypted PDF (a password is required)"
    assert docs["empty.txt"].reason == "empty file"
    assert docs["image.txt"].reason == "binary data, not text"
    assert (docs["notes.xyz"].reason or "").startswith("unsupported file type")
    assert [c.source for c in corpus.chunks()] == ["good.md"]


def test_oversized_file_is_skipped_without_reading_it(corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, max_file_mb=0.001, _env_file=None)
    (corpus_dir / "big.txt").write_text("word " * 1000)
    corpus = _corpus(settings)
    corpus.scan()
    (doc,) = corpus.documents()
    assert doc.status == "skipped" and "over the limit of" in (doc.reason or "") and "RAG_MAX_FILE_MB" in (doc.reason or "")


def test_only_changed_files_are_reparsed(settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.documents.corpus

    for name in ("a.md", "b.md", "c.md"):
        (corpus_dir / name).write_text(f"# {name}\n\ncontent of {name}")
    corpus = _corpus(settings)
    corpus.scan()
    parsed: list[str] = []
    real = rag.documents.corpus.parse_bytes
    def parse(data: bytes, name: str, limits: ParseLimits) -> ParsedDocument:
        parsed.append(name)
        return real(data, name, limits)

    monkeypatch.setattr(rag.documents.corpus, "parse_bytes", parse)

    assert not corpus.scan().any and parsed == []

    (corpus_dir / "b.md").write_text("# b\n\nedited content, longer than before")
    (corpus_dir / "d.md").write_text("# d\n\nnew")
    (corpus_dir / "c.md").unlink()
    report = corpus.scan()
    assert (report.added, report.changed, report.removed) == (("d.md",), ("b.md",), ("c.md",))
    assert sorted(parsed) == ["b.md", "d.md"]
    assert any("edited content" in c.text for c in corpus.chunks())


def test_touching_a_file_without_changing_it_does_not_reindex(settings: Settings, corpus_dir: Path) -> None:
    path = corpus_dir / "a.md"
    path.write_text("# a\n\nsame")
    corpus = _corpus(settings)
    corpus.scan()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert not corpus.scan().any


def test_missing_corpus_folder_is_a_corpus_error(settings: Settings, corpus_dir: Path) -> None:
    from rag.errors import CorpusError

    corpus = _corpus(settings)
    corpus_dir.rmdir()
    with pytest.raises(CorpusError, match="does not exist"):
        corpus.scan()
