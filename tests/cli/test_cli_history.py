"""`rag users` and `rag export` on a real SQLite history database in a temporary data folder."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from rag.chat import conversation as chat
from rag.cli.main import cli
from rag.config import Settings
from rag.chat.history import SAVE_CONVERSATION, History, migrate
from rag.answer.options import AnswerOptions
from rag.types import Answer, Chunk, Passage, SourceRef


@pytest.fixture
def data_dir(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_users_are_added_listed_and_removed_with_hashed_passwords(data_dir: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "alice", "--admin", "--password-stdin"], input="s3cret-pass\n")
    assert added.exit_code == 0 and "added alice (admin)" in added.output
    assert runner.invoke(cli, ["users", "add", "bob"], input="bob-password\nbob-password\n").exit_code == 0  # prompted twice
    short = runner.invoke(cli, ["users", "add", "carol", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    listed = json.loads(runner.invoke(cli, ["users", "list", "--json"]).output)
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "admin"), ("bob", "user")]
    database = b"".join(p.read_bytes() for p in data_dir.glob("history.db*"))
    assert b"s3cret-pass" not in database and b"$argon2id$" in database
    assert runner.invoke(cli, ["users", "remove", "bob"]).exit_code == 0
    missing = runner.invoke(cli, ["users", "remove", "bob"])
    assert missing.exit_code == 1 and "no user named bob" in missing.output
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700


def _stored_conversation(settings: Settings) -> None:
    chunk = Chunk("servers/ollama.md", 0, "Ollama listens on 11434.", 0, 24, "Ollama", heading="Running the models with Ollama")
    answer = Answer("Port 11434 [1].", "gpt-oss-20b", "gpt-oss-20b", "http://x/v1", "auto", True,
                    ("draft too short (3 tokens, minimum 12)",), (SourceRef(1, Passage(chunk, 7.5, 1)),), (1,),
                    MappingProxyType({"retrieve": 2.0, "total": 900.0}), 500, 20, False, 0.00012)
    conversation = chat.remember_answer(chat.start(AnswerOptions()), "Which port?", answer, "2026-11-30T10:00:00Z")

    async def store() -> None:
        history = History.open(settings)
        await migrate(history.engine)
        async with history.engine.begin() as connection:
            await connection.execute(text('INSERT INTO threads ("id", "name", "userIdentifier", "createdAt", "metadata") '
                                          "VALUES ('t-1', 'Which port?', 'alice', '2026-11-30T10:00:00Z', '{}')"))
            await connection.execute(text(SAVE_CONVERSATION), {"thread": "t-1", "at": "2026-11-30T10:00:01Z",
                                                               "data": json.dumps({"rag_conversation": chat.to_dict(conversation)})})
        await history.aclose()
    asyncio.run(store())


def test_export_writes_a_stored_conversation_as_markdown_or_json(data_dir: Path, corpus_dir: Path, tmp_path: Path) -> None:
    _stored_conversation(Settings(corpus_dir=corpus_dir, data_dir=data_dir, _env_file=None))
    runner = CliRunner()
    listed = runner.invoke(cli, ["export", "--list"])
    assert listed.exit_code == 0 and listed.output.startswith("t-1\talice\t")
    markdown = runner.invoke(cli, ["export", "t-1"]).output
    assert markdown.startswith("# Which port?\n")
    assert "## 1. Which port?\n\nPort 11434 [1].\n" in markdown
    assert "- \\[1\\] servers/ollama.md › Running the models with Ollama (`servers/ollama.md`, chunk 0)" in markdown
    assert "- escalated: draft too short (3 tokens, minimum 12)" in markdown
    assert "- timings: retrieve 2 ms, total 900 ms" in markdown and "- cost: $0.000120 (hypothetical)" in markdown
    out = tmp_path / "c.json"
    assert runner.invoke(cli, ["export", "t-1", "--format", "json", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["conversation"]["exchanges"][0]["reasons"] == ["draft too short (3 tokens, minimum 12)"]
    other = runner.invoke(cli, ["export", "t-1", "--user", "bob"])
    assert other.exit_code == 1 and "no stored conversation t-1 of bob" in other.output
