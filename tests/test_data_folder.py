"""The data folder as the attack run left it (issue 21, findings 3 and 5): a plain file where the index
folder should be, and a folder the user created world-readable. The store is a cache (say so, work from
memory); every file the app writes there is owner-only whatever the folder's mode."""

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.private import private_dir, private_file, write_private
from rag.runtime import build_retriever
from tests.conftest import REPO


def _rag(*args: str, data: Path, corpus: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_CORPUS_DIR": str(corpus),
                   "RAG_BASE_URL": "http://127.0.0.1:9/v1", **env}
    return subprocess.run([str(Path(sys.executable).parent / "rag"), *args], capture_output=True, text=True,
                          env=environment, timeout=300, input="")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("blocked", ["index", "index/documents-x"])
def test_a_file_where_the_index_folder_should_be_breaks_no_command(tmp_path: Path, blocked: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "index").write_text("not a folder") if blocked == "index" else None
    if blocked != "index":
        (data / "index").mkdir()
        os.chmod(data / "index", 0o500)  # a folder we may not write
    corpus = REPO / "docs_corpus"
    for args in (["search", "ollama port"], ["corpus", "list"], ["ask", "Which port does Ollama use?", "--json"]):
        result = _rag(*args, data=data, corpus=corpus)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode in (0, 1), result.stderr  # ask: 1 when no model answers (no server here)
        if args[0] != "ask":
            assert result.returncode == 0 and "11434" in result.stdout or args[0] == "corpus"
        warnings = [line for line in result.stderr.splitlines() if "cannot be written" in line]
        assert len(warnings) <= 1  # said once, not per save
    os.chmod(data / "index", 0o700) if (data / "index").is_dir() else None


def test_a_blocked_store_is_said_once_and_the_retriever_works_from_memory(tmp_path: Path, corpus_dir: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    data = tmp_path / "data"
    data.mkdir()
    (data / "index").write_text("in the way")
    retriever = build_retriever(Settings(corpus_dir=corpus_dir, data_dir=data, _env_file=None))
    retriever.warm_up()
    retriever.save_store()
    retriever.save_store()
    assert sum("cannot be written" in r.getMessage() for r in caplog.records) == 1
    assert retriever.store is not None and retriever.store.unwritable and "index" in retriever.store.unwritable
    assert retriever.snapshot is not None and retriever.snapshot.chunks
    assert (data / "index").read_text() == "in the way"  # nothing the user left is touched


def test_the_history_database_and_its_wal_are_owner_only_in_a_world_readable_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # as a user creates it
    old = os.umask(0o022)
    try:
        added = subprocess.run([str(Path(sys.executable).parent / "rag"), "users", "add", "alice", "--password-stdin"],
                               input="s3cret-password\n", capture_output=True, text=True, timeout=120,
                               env={**os.environ, "RAG_DATA_DIR": str(data), "RAG_AUTH": "password",
                                    "RAG_CORPUS_DIR": str(REPO / "docs_corpus")})
        assert added.returncode == 0, added.stderr
        assert _mode(data / "history.db") == 0o600

        async def while_open() -> list[tuple[str, int]]:  # the -wal and -shm files exist only while connected
            from sqlalchemy import text

            from rag.chat.history import open_engine

            engine = open_engine(f"sqlite+aiosqlite:///{data / 'history.db'}")
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE IF NOT EXISTS probe (x INT)"))
                await connection.execute(text("INSERT INTO probe VALUES (1)"))
                modes = [(p.name, _mode(p)) for p in data.iterdir() if p.is_file()]
            await engine.dispose()
            return modes

        modes = asyncio.run(while_open())
    finally:
        os.umask(old)
    assert {"history.db", "history.db-wal", "history.db-shm"} <= {name for name, _ in modes}
    assert all(mode & 0o077 == 0 for _, mode in modes), modes


def test_an_existing_loose_database_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("history.db", "history.db-wal", "history.db-shm"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    from rag.chat.history import open_engine

    open_engine(f"sqlite+aiosqlite:///{data / 'history.db'}")
    assert all(_mode(data / n) == 0o600 for n in ("history.db", "history.db-wal", "history.db-shm"))


def test_the_index_store_and_sign_in_secret_are_owner_only(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    data = tmp_path / "deep" / "data"
    old = os.umask(0o022)
    try:
        settings = Settings(corpus_dir=corpus_dir, data_dir=data, _env_file=None)
        retriever = build_retriever(settings)
        retriever.warm_up()
        retriever.save_store()
        from rag.chat.auth import auth_secret

        os.environ.pop("CHAINLIT_AUTH_SECRET", None)
        auth_secret(settings)
    finally:
        os.umask(old)
    assert _mode(data) == 0o700 and _mode(data / "index") == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert len(files) >= 2 and all(_mode(p) & 0o077 == 0 for p in files), [(p.name, oct(_mode(p))) for p in files]


def test_private_helpers(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = private_dir(tmp_path / "a" / "b")
        assert _mode(tmp_path / "a") == 0o700 and _mode(folder) == 0o700
        write_private(folder / "x", b"data")
        assert _mode(folder / "x") == 0o600 and (folder / "x").read_bytes() == b"data"
        private_file(folder / "y")
        assert _mode(folder / "y") == 0o600
    finally:
        os.umask(old)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "file")
