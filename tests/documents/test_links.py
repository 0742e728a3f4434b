"""Links to the corpus's PDFs (cited pages of a reopened conversation): only PDFs inside the corpus."""

from __future__ import annotations

from pathlib import Path

from rag.documents.links import PREFIX, corpus_link, corpus_pdf


def test_a_pdf_in_the_corpus_links_and_resolves_back(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "uploads").mkdir(parents=True)
    pdf = corpus / "uploads" / "field guide #2.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    link = corpus_link(corpus, pdf)
    assert link == PREFIX + "uploads/field%20guide%20%232.pdf"
    assert corpus_pdf(corpus, link.removeprefix(PREFIX)) == pdf.resolve()


def test_nothing_outside_the_corpus_or_other_than_a_pdf(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.md").write_text("# notes")
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(b"%PDF-1.4")
    (corpus / "escape.pdf").symlink_to(outside)  # a link that leads out of the corpus
    for path in ("../secret.pdf", "..%2Fsecret.pdf", "notes.md", "escape.pdf", "/etc/passwd.pdf", "", "a\x00.pdf",
                 "missing.pdf"):
        assert corpus_pdf(corpus, path) is None, path
    assert corpus_link(corpus, outside) is None and corpus_link(corpus, corpus / "notes.md") is None
    assert corpus_link(None, outside) is None and corpus_link(corpus, None) is None
