from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings, load_settings
from rag.errors import ConfigError


def test_defaults(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    s = load_settings()
    assert s.small_model == "phi-4-mini"
    assert s.large_model == "gpt-oss-20b"
    assert s.engine == "auto"  # rank-bm25 for small corpora, bm25s above AUTO_BM25S_ABOVE chunks
    assert s.top_k == 5
    assert s.base_url is None


def test_environment_overrides(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("RAG_TOP_K", "9")
    monkeypatch.setenv("RAG_ENGINE", "bm25s")
    monkeypatch.setenv("RAG_BASE_URL", "http://127.0.0.1:5273/v1")
    s = load_settings()
    assert (s.top_k, s.engine, s.base_url) == (9, "bm25s", "http://127.0.0.1:5273/v1")


def test_foundry_local_endpoint_is_read(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", "http://host:5273/v1")
    assert load_settings().base_url == "http://host:5273/v1"


def test_dotenv_file_is_read(corpus_dir: Path, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"RAG_CORPUS_DIR={corpus_dir}\nRAG_SMALL_MODEL=phi4-mini\n")
    assert load_settings().small_model == "phi4-mini"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RAG_TOP_K", "0", "RAG_TOP_K"),
        ("RAG_TOP_K", "many", "RAG_TOP_K"),
        ("RAG_ENGINE", "elastic", "RAG_ENGINE"),
        ("RAG_CHUNK_TOKENS", "5", "RAG_CHUNK_TOKENS"),
        ("RAG_BM25_B", "2", "RAG_BM25_B"),
    ],
)
def test_invalid_value_names_the_variable(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)
    assert repr(value) in str(info.value)


def test_missing_corpus_dir_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="RAG_CORPUS_DIR: directory .* does not exist"):
        load_settings()


def test_overlap_must_be_below_chunk_size(corpus_dir: Path) -> None:
    with pytest.raises(ConfigError, match="RAG_CHUNK_OVERLAP"):
        load_settings(corpus_dir=corpus_dir, chunk_tokens=64, chunk_overlap=64)


def test_settings_are_immutable(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        settings.top_k = 3  # type: ignore[misc]
