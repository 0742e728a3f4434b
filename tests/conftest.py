"""Shared fixtures. Tests never touch the network or a model server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path:
    """The team's shared data (BEIR SciFact, the seed pages): RAG_SHARED_DATA, else `../shared/data` beside
    the clone, else /work/shared/data (where it lives on our machines when the clone is elsewhere)."""
    candidates = [Path(p) for p in (os.environ.get("RAG_SHARED_DATA"),) if p]
    candidates += [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = _shared_data()

# Importing chainlit creates .chainlit/ and .files/ in the working directory; app tests point it at a
# temporary folder instead of the repository (FACTS.md).
os.environ.setdefault("RAG_TEST_RUN", "1")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAG_* or FOUNDRY_* variable or .env from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("RAG_", "FOUNDRY_LOCAL")) and name != "RAG_TEST_RUN":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """An empty corpus folder."""
    path = tmp_path / "corpus"
    path.mkdir()
    return path


@pytest.fixture
def settings(corpus_dir: Path) -> Settings:
    """Settings over the temporary corpus, small chunks so tests can exercise chunking."""
    return Settings(corpus_dir=corpus_dir, chunk_tokens=64, chunk_overlap=8, _env_file=None)


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """One real OpenSearch node for the whole run (each test uses an index of its own)."""
    from tests.opensearch import opensearch_cluster

    with opensearch_cluster(1) as cluster:
        yield cluster.url_setting
