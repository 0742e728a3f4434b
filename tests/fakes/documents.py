"""Document builders live in rag.bench.samples (the ingest benchmark ships with them)."""

from rag.bench.samples import make_docx, make_encrypted_pdf, make_pdf, make_zip_bomb_docx

__all__ = ["make_docx", "make_encrypted_pdf", "make_pdf", "make_zip_bomb_docx"]
