"""History through the real data layer, on a real SQLite file and on a real PostgreSQL server: privacy
between users, deleting a conversation whole, custom elements and feedback, the schema and its upgrade."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import Mock

import pytest
import pytest_asyncio
from sqlalchemy import text

from rag.config import Settings
from rag.chat.history import History, database_url, migrate, open_engine
from tests.postgres import missing_reason, postgres_server
from tests.test_app import app_module, context  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'history.db'}"
    base = request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+asyncpg://")
    return base


@pytest_asyncio.fixture
async def history(url: str) -> AsyncIterator[History]:
    engine = open_engine(url)
    async with engine.begin() as connection:  # the PostgreSQL server is shared by the module: start empty
        for table in ("rag_conversations", "feedbacks", "elements", "steps", "threads", "users", "rag_users", "rag_uploads", "rag_schema"):
            await connection.execute(text(f"DROP TABLE IF EXISTS {table}" + (" CASCADE" if engine.dialect.name == "postgresql" else "")))
    await migrate(engine)
    yield History(engine)
    await engine.dispose()


def _layer(url: str) -> Any:
    """The app's history data layer on `url` (imported here: chainlit is imported once the app fixture
    has pointed its files at a temporary folder)."""
    from rag.ui.datalayer import HistoryLayer

    return HistoryLayer(url)


async def _count(history: History, table: str, thread: str) -> int:
    async with history.engine.connect() as connection:
        column = '"forId" IN (SELECT "id" FROM steps WHERE "threadId" = :t)' if table == "feedbacks" else '"threadId" = :t'
        return int((await connection.execute(text(f"SELECT COUNT(*) FROM {table} WHERE {column}"), {"t": thread})).scalar() or 0)


def _step(step_id: str, thread: str, output: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "threadId": thread, "name": "assistant", "type": "assistant_message", "streaming": False,
            "output": output, "createdAt": "2026-11-30T10:00:00Z", "metadata": {"rag": {"mode": "auto", "model": "phi-4-mini"}},
            "showInput": False, **extra}


async def _thread(layer: Any, user: Any, thread: str, step_id: str, props: dict[str, Any]) -> None:
    import chainlit as cl

    await layer.update_thread(thread, user_id=user.id)  # as Chainlit's first interaction (its name is not kept)
    await layer.update_thread(thread, name=f"{thread} title")  # as a rename
    await layer.create_step(_step(step_id, thread, f"answer in {thread}"))
    element = cl.CustomElement(name="Sources", props=props, display="inline")
    element.for_id, element.thread_id = step_id, thread
    await layer.create_element(element)


async def test_conversations_are_private_and_deleted_whole(app_module: ModuleType, context: Mock, history: History, url: str) -> None:  # noqa: F811
    import chainlit as cl
    from chainlit.types import Feedback, Pagination, ThreadFilter

    layer = _layer(url)
    try:
        alice = await layer.create_user(cl.User(identifier="alice"))
        bob = await layer.create_user(cl.User(identifier="bob"))
        await _thread(layer, alice, "t-alice", "s-alice", {"anchor": "a", "sources": [{"number": 1, "text": "café ✓"}]})
        await _thread(layer, bob, "t-bob", "s-bob", {"anchor": "b", "sources": []})

        listed = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id))
        assert [t["id"] for t in listed.data] == ["t-alice"]  # bob's conversation is not alice's to see
        await _thread(layer, alice, "t-alice-2", "s-alice-2", {})
        await layer.upsert_feedback(Feedback(forId="s-alice-2", value=0, threadId="t-alice-2"))
        found = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id, search="IN T-ALICE-2"))
        assert [t["id"] for t in found.data] == ["t-alice-2"]  # searched in the answers' text, any case
        disliked = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id, feedback=0))
        assert [t["id"] for t in disliked.data] == ["t-alice-2"]
        first_page = await layer.list_threads(Pagination(first=1), ThreadFilter(userId=alice.id))
        second_page = await layer.list_threads(Pagination(first=1, cursor=first_page.pageInfo.endCursor), ThreadFilter(userId=alice.id))
        assert first_page.pageInfo.hasNextPage and not second_page.pageInfo.hasNextPage
        assert {first_page.data[0]["id"], second_page.data[0]["id"]} == {"t-alice", "t-alice-2"}
        await layer.delete_thread("t-alice-2")
        assert await layer.get_thread_author("t-bob") == "bob"

        thread = await layer.get_thread("t-alice")
        assert thread["steps"][0]["output"] == "answer in t-alice"
        assert thread["elements"][0]["props"] == {"anchor": "a", "sources": [{"number": 1, "text": "café ✓"}]}

        await layer.upsert_feedback(Feedback(forId="s-alice", value=1, threadId="t-alice"))
        assert await history.feedback("alice") == [(1, {"rag": {"mode": "auto", "model": "phi-4-mini"}})]
        assert await history.feedback("bob") == []
        # As the chat stores it (issue 26): the rating is on the turn's run step; the answer inside it says
        # which mode and model answered (the run's last answer: here the one after a /stats reply).
        await layer.create_step({**_step("r-alice", "t-alice", ""), "type": "run", "name": "on_message", "metadata": {}})
        await layer.create_step(_step("a-alice", "t-alice", "first", parentId="r-alice",
                                      metadata={"rag": {"mode": "small", "model": "phi-4-mini"}}))
        await layer.create_step(_step("b-alice", "t-alice", "second", parentId="r-alice", createdAt="2026-11-30T10:00:05Z",
                                      metadata={"rag": {"mode": "compare", "model": "phi-4-mini vs gpt-oss-20b"}}))
        await layer.upsert_feedback(Feedback(forId="r-alice", value=0, threadId="t-alice"))
        await layer.writer.flush()
        assert sorted(await history.feedback("alice"), key=lambda r: r[0]) == [
            (0, {"rag": {"mode": "compare", "model": "phi-4-mini vs gpt-oss-20b"}}),
            (1, {"rag": {"mode": "auto", "model": "phi-4-mini"}})]

        await layer.update_thread("t-alice", name="Renamed")
        assert (await layer.get_thread("t-alice"))["name"] == "Renamed"

        await layer.delete_thread("t-alice")
        assert await layer.get_thread("t-alice") is None
        await layer.writer.flush()
        assert [await _count(history, t, "t-alice") for t in ("steps", "elements", "feedbacks")] == [0, 0, 0]
        assert await _count(history, "steps", "t-bob") == 1  # the other user's conversation is untouched
    finally:
        await layer.close()


async def test_the_conversation_value_is_stored_with_the_thread(app_module: ModuleType, context: Mock, history: History, url: str) -> None:  # noqa: F811
    import chainlit as cl

    layer = _layer(url)
    try:
        alice = await layer.create_user(cl.User(identifier="alice"))
        await _thread(layer, alice, "t-1", "s-1", {})
        layer.save_conversation("t-1", {"rag_conversation": {"version": 2, "exchanges": [{"question": "q1"}]}})
        layer.save_conversation("t-1", {"rag_conversation": {"version": 2, "exchanges": [{"question": "q1"}, {"question": "q2"}]}})
        await layer.update_thread("t-1", metadata={"chat_settings": {"mode": "large"}})  # Chainlit's own write
        await layer.writer.flush()
        record = await history.thread("t-1")
        assert record is not None and record.user == "alice" and record.metadata["chat_settings"] == {"mode": "large"}
        stored = await history.conversation("t-1")
        assert [e["question"] for e in stored["rag_conversation"]["exchanges"]] == ["q1", "q2"]  # the latest state
        assert [t.id for t in await history.threads("alice")] == ["t-1"] and await history.threads("bob") == []
        await layer.delete_thread("t-1")
        assert await history.conversation("t-1") == {}  # deleted with its conversation
    finally:
        await layer.close()


async def test_an_old_schema_is_upgraded_in_place(app_module: ModuleType, context: Mock, url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = open_engine(url)
    async with engine.begin() as connection:
        for table in ("rag_conversations", "feedbacks", "elements", "steps", "threads", "users", "rag_users", "rag_uploads", "rag_schema"):
            await connection.execute(text(f"DROP TABLE IF EXISTS {table}" + (" CASCADE" if engine.dialect.name == "postgresql" else "")))
    assert await migrate(engine, target=1) == (0, 1)  # a database made before Chainlit 2.9.4's steps.modes
    layer = _layer(url)
    try:
        import chainlit as cl

        user = await layer.create_user(cl.User(identifier="alice"))
        await _thread(layer, user, "t-old", "s-old", {})
        await layer.create_step(_step("s-modes", "t-old", "with modes", modes={"tool": "search"}))
        await layer.writer.flush()
        assert await _count(History(engine), "steps", "t-old") == 1  # the write failed: no column yet
        assert await migrate(engine) == (1, 3)
        assert await migrate(engine) == (3, 3)  # idempotent
        await layer.create_step(_step("s-modes", "t-old", "with modes", modes={"tool": "search"}))
        await layer.writer.flush()
        assert await _count(History(engine), "steps", "t-old") == 2  # the old conversation is still there
    finally:
        await layer.close()
        await engine.dispose()


async def test_users_are_stored_as_argon2_hashes(history: History) -> None:
    from rag.chat.auth import hash_password, sign_in

    await history.put_user("alice", hash_password("correct horse"), "user")
    stored = await history.user_record("alice")
    assert stored is not None and stored[0].startswith("$argon2id$") and "correct horse" not in stored[0]
    assert await sign_in(history, "alice", "correct horse") is not None
    assert await sign_in(history, "alice", "wrong horse") is None
    assert await sign_in(history, "nobody", "correct horse") is None
    assert await history.remove_user("alice") and not await history.remove_user("alice")


async def test_uploads_remember_their_first_owner(history: History) -> None:
    await history.record_upload("uploads/a.md", "alice")
    await history.record_upload("uploads/a.md", "bob")  # the same file uploaded again by someone else
    assert await history.upload_owners() == {"uploads/a.md": "alice"}
    await history.forget_upload("uploads/a.md")
    assert await history.upload_owners() == {}


def test_the_default_database_is_a_private_sqlite_file_in_the_data_folder(tmp_path: Path, corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, data_dir=tmp_path / "state", _env_file=None)
    assert database_url(settings) == f"sqlite+aiosqlite:///{(tmp_path / 'state' / 'history.db').resolve()}"
    open_engine(database_url(settings))
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    pg = Settings(corpus_dir=corpus_dir, database_url="postgres://u:p@db:5432/rag", _env_file=None)
    assert database_url(pg) == "postgresql+asyncpg://u:p@db:5432/rag"


def test_a_bad_database_url_is_refused_without_echoing_it(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.config import load_settings
    from rag.errors import ConfigError

    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/rag")
    with pytest.raises(ConfigError) as caught:
        load_settings(corpus_dir=corpus_dir, _env_file=None)
    assert "DATABASE_URL" in str(caught.value) and "hunter2" not in str(caught.value)


def test_json_columns_come_back_as_objects() -> None:
    from rag.chat.history import json_value

    assert json_value('{"a": 1}') == {"a": 1} and json_value({"a": 1}) == {"a": 1}
    assert json_value("not json") == {} and json_value(None) == {} and json_value(json.dumps([1])) == {}


async def test_writes_wait_in_order_and_rewrites_of_one_row_merge(history: History) -> None:
    from rag.chat.history import WriteBehind

    failures: list[str] = []
    writer = WriteBehind(str(history.engine.url.render_as_string(hide_password=False)), failures.append)
    insert = "INSERT INTO rag_uploads (source, owner, created_at) VALUES (:s, :o, 'now') ON CONFLICT (source) DO UPDATE SET owner = EXCLUDED.owner"
    for version in range(50):  # one row rewritten while it streams, another row between
        writer.submit(insert, {"s": "a", "o": f"v{version}"}, key=("upload", "a"))
        if version == 10:
            writer.submit(insert, {"s": "b", "o": "b"})
    writer.forget(("upload", "a"))
    writer.submit("DELETE FROM rag_uploads WHERE source = :s", {"s": "a"})
    writer.submit(insert, {"s": "a", "o": "after delete"}, key=("upload", "a"))
    writer.submit("INSERT INTO no_such_table VALUES (1)", {})  # fails alone; the others are kept
    await writer.flush()
    writer.close()
    assert await history.upload_owners() == {"a": "after delete", "b": "b"}
    assert writer.merged + writer.written == 54  # every write either merged into a later one or written
    assert len(failures) == 1 and "no_such_table" in failures[0]


async def test_a_step_rewritten_while_its_conversation_is_new_keeps_its_last_state(app_module: ModuleType, context: Mock, history: History, url: str) -> None:  # noqa: F811
    layer = _layer(url)
    try:
        # The first answer of a new conversation: its step is rewritten several times at once, before the
        # conversation's row exists. The stored step must be the last version, never an earlier one, even
        # when a lookup of the conversation (Chainlit's create_step makes one) is slower for the first call.
        delays = iter([0.3, 0.2, 0.1, 0.0, 0.0])
        update_thread = layer.update_thread

        async def slow_update_thread(*args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(next(delays, 0.0))
            await update_thread(*args, **kwargs)

        layer.update_thread = slow_update_thread
        await asyncio.gather(*(layer.create_step(_step("s-new", "t-new", f"version {i}")) for i in range(5)))
        thread = await layer.get_thread("t-new")
        assert thread is not None and [s["output"] for s in thread["steps"]] == ["version 4"]
    finally:
        await layer.close()


@pytest.mark.parametrize(("search", "expected"), [
    ("%", ["t-pct"]), ("_", ["t-under"]), ("50%", ["t-pct"]), ("5_0", []), ("a_b", ["t-under"]), ("\\", ["t-slash"]),
    ("\\%", []), ("500", ["t-500"]), ("0%", ["t-pct"]), ("", ["t-500", "t-pct", "t-slash", "t-under", "t-zzz"]),
])
async def test_conversation_search_takes_wildcards_literally(app_module: ModuleType, context: Mock,  # noqa: F811
                                                             history: History, url: str, search: str,
                                                             expected: list[str]) -> None:
    # Issue 21, finding 6: "%" listed every conversation; "50%" matched "500".
    import chainlit as cl
    from chainlit.types import Pagination, ThreadFilter

    layer = _layer(url)
    try:
        alice = await layer.create_user(cl.User(identifier="alice"))
        for thread, output in (("t-500", "the fee is 500 euros"), ("t-pct", "a rise of 50% this year"),
                               ("t-under", "the variable a_b holds it"), ("t-slash", "C:\\temp holds it"),
                               ("t-zzz", "nothing special")):
            await layer.update_thread(thread, user_id=alice.id)
            await layer.update_thread(thread, name=thread)
            await layer.create_step(_step(f"s-{thread}", thread, output))
        found = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id, search=search or None))
        assert sorted(t["id"] for t in found.data) == expected
    finally:
        await layer.close()


async def test_conversations_are_named_by_their_first_question(app_module: ModuleType, context: Mock, history: History, url: str) -> None:  # noqa: F811
    """Issue 26: a /paste became the whole title (and was found by the sidebar's search), a chat that only
    ran /docs became an "Untitled Conversation" entry."""
    import chainlit as cl
    from chainlit.types import Pagination, ThreadFilter

    def user_message(step_id: str, thread: str, output: str, command: str | None = None) -> dict[str, Any]:
        return {**_step(step_id, thread, output), "type": "user_message", "name": "alice", "command": command, "metadata": {}}

    layer = _layer(url)
    try:
        alice = await layer.create_user(cl.User(identifier="alice"))
        pasted = "The warranty covers parts for two years and labour for one. " * 14
        for thread, first in (("t-docs", ("", "docs")), ("t-ask", ("Which port does Ollama use?", None)),
                              ("t-paste", (f"{pasted}\n\nHow long are parts covered?", "paste")),
                              ("t-typed", ("/stats", None))):
            await layer.update_thread(thread, name=first[0] or "", user_id=alice.id)  # Chainlit's first interaction
            await layer.create_step(user_message(f"u-{thread}", thread, *first))
        await layer.create_step(user_message("u-docs-2", "t-docs", "What is BM25?"))  # a question after /docs
        listed = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id))
        names = {t["id"]: t["name"] for t in listed.data}
        assert names == {"t-docs": "What is BM25?", "t-ask": "Which port does Ollama use?",
                         "t-paste": "Pasted text: How long are parts covered?"}  # /stats alone is not listed
        found = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id, search="labour for one"))
        assert found.data == []  # the pasted text stays in the chat
        await layer.update_thread("t-ask", name="Ports")  # a rename is kept, and a later question does not undo it
        await layer.create_step(user_message("u-ask-2", "t-ask", "And LM Studio?"))
        listed = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id))
        assert {t["id"]: t["name"] for t in listed.data}["t-ask"] == "Ports"
    finally:
        await layer.close()


async def test_a_cited_pdf_page_is_stored_as_a_link_to_its_corpus_file(app_module: ModuleType, context: Mock, history: History, url: str, tmp_path: Path) -> None:  # noqa: F811
    import chainlit as cl

    from rag.ui.datalayer import HistoryLayer

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "guide.pdf").write_bytes(b"%PDF-1.4")
    layer = HistoryLayer(url, corpus)
    try:
        user = await layer.create_user(cl.User(identifier="carol"))
        assert user is not None
        await layer.update_thread("t-pdf", user_id=user.id)
        await layer.create_step(_step("s-pdf", "t-pdf", "Leaves [1]."))
        for number, path in ((1, corpus / "guide.pdf"), (2, tmp_path / "elsewhere.pdf")):
            page = cl.Pdf(name=f"[{number}] page 2 · guide.pdf", path=str(path), page=2, display="inline")
            page.for_id, page.thread_id = "s-pdf", "t-pdf"
            await layer.create_element(page)
        thread = await layer.get_thread("t-pdf")
        assert thread is not None
        pdfs = [e for e in thread.get("elements") or [] if e["type"] == "pdf"]
        assert [(e["url"], e["page"], e["forId"]) for e in pdfs] == [("/corpus-file/guide.pdf", 2, "s-pdf")]  # not the other
    finally:
        await layer.close()
