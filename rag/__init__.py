"""Grounded chat over an editable document corpus: BM25 retrieval, local models, escalation."""

__version__ = "0.1.0"
