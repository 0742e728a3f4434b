"""The history database: Chainlit's tables (conversations, steps, elements, feedback) and ours (users and
their password hashes, who uploaded which document), created at start-up and upgraded by numbered steps.

SQLite in the data folder by default (WAL, so readers never wait for the writer), PostgreSQL when
`DATABASE_URL` is set, which is what several app processes share. Plain SQLAlchemy Core: the app hands
the same URL to Chainlit's SQLAlchemy data layer (`rag.ui.datalayer`), whose own SQL (the rows a chat
writes, the sidebar's page of conversations) is built here; the CLI (`rag users`, `rag export`) uses this
module too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rag.chat.paste import PASTE_MIN_CHARS
from rag.config import Settings
from rag.errors import RagError
from rag.private import private_dir, private_file, tighten

Role = Literal["admin", "user"]
SQLITE_FILE = "history.db"


class HistoryError(RagError):
    """The history database cannot be opened, upgraded or written."""


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL (async drivers) of the history database the settings name."""
    if settings.database_url is None:
        return f"sqlite+aiosqlite:///{(settings.data_dir / SQLITE_FILE).resolve()}"
    url = settings.database_url.get_secret_value().strip()
    scheme, rest = url.split(":", 1)
    return {
        "postgres": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite",
    }.get(scheme, scheme) + ":" + rest


def contains_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching `text` anywhere, its own %, _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def configure_engine(engine: AsyncEngine) -> None:
    """SQLite settings every connection needs: WAL (readers never block on the writer), a busy timeout
    (concurrent writers wait instead of failing with "database is locked"), foreign keys on."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def open_engine(url: str) -> AsyncEngine:
    """An engine on `url`; a SQLite file is created owner-only first.

    Conversations and password hashes are private whatever the data folder's mode: the database file is
    made 0600 before SQLite opens it, and SQLite gives its -wal and -shm files the database file's mode.
    """
    if is_sqlite(url) and ":memory:" not in url:
        path = Path(url.split(":///", 1)[1].split("?", 1)[0])
        try:
            private_dir(path.parent)
            private_file(path)
            for suffix in ("-wal", "-shm", "-journal"):  # left looser by an older version
                tighten(path.with_name(path.name + suffix))
        except OSError as exc:
            raise HistoryError(f"the history database {path} cannot be created ({exc.strerror or exc}); "
                               "set RAG_DATA_DIR to a folder the app may write") from exc
    engine = create_async_engine(url, pool_pre_ping=not is_sqlite(url))
    configure_engine(engine)
    return engine


# --- schema -------------------------------------------------------------------------------------------
# Chainlit's SQLAlchemy data layer writes every key of a step or element dict as a column, so each one
# must exist (FACTS.md). Ids are text on both databases: the data layer passes strings.
def _schema_v1(json_type: str, list_type: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS users ("id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE,
            "metadata" {json_type} NOT NULL, "createdAt" TEXT)""",
        f"""CREATE TABLE IF NOT EXISTS threads ("id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT,
            "userIdentifier" TEXT, "tags" {list_type}, "metadata" {json_type},
            FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)""",
        f"""CREATE TABLE IF NOT EXISTS steps ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
            "threadId" TEXT NOT NULL, "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN,
            "isError" BOOLEAN, "metadata" {json_type}, "tags" {list_type}, "input" TEXT, "output" TEXT,
            "createdAt" TEXT, "command" TEXT, "start" TEXT, "end" TEXT, "generation" {json_type},
            "showInput" TEXT, "language" TEXT, "indent" INT, "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN,
            FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
        f"""CREATE TABLE IF NOT EXISTS elements ("id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT,
            "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT,
            "language" TEXT, "forId" TEXT, "mime" TEXT, "props" {json_type}, "autoPlay" BOOLEAN,
            "playerConfig" {json_type}, FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
        """CREATE TABLE IF NOT EXISTS feedbacks ("id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT,
            "value" INT NOT NULL, "comment" TEXT,
            FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
        'CREATE INDEX IF NOT EXISTS steps_thread ON steps ("threadId")',
        'CREATE INDEX IF NOT EXISTS elements_thread ON elements ("threadId")',
        'CREATE INDEX IF NOT EXISTS threads_user ON threads ("userId")',
        'CREATE INDEX IF NOT EXISTS feedbacks_for ON feedbacks ("forId")',
        """CREATE TABLE IF NOT EXISTS rag_users (identifier TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
            role TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS rag_uploads (source TEXT PRIMARY KEY, owner TEXT NOT NULL,
            created_at TEXT NOT NULL)""",
    ]


def migrations(dialect: str) -> list[list[str]]:
    """Schema steps in order; version N is reached by running step N. Append, never edit a released step."""
    json_type, list_type = ("JSONB", "TEXT[]") if dialect == "postgresql" else ("TEXT", "TEXT")
    return [
        _schema_v1(json_type, list_type),
        # Chainlit 2.9.4 stores the composer's modes with each step.
        [f'ALTER TABLE steps ADD COLUMN "modes" {json_type}'],
        # What the app remembers of a conversation (memory, choices, stats), written beside Chainlit's rows
        # by the background writer; deleted with its conversation.
        ["""CREATE TABLE IF NOT EXISTS rag_conversations (thread_id TEXT PRIMARY KEY, data TEXT NOT NULL,
            updated_at TEXT NOT NULL, FOREIGN KEY (thread_id) REFERENCES threads("id") ON DELETE CASCADE)"""],
    ]


SAVE_CONVERSATION = ("INSERT INTO rag_conversations (thread_id, data, updated_at) VALUES (:thread, :data, :at) "
                     "ON CONFLICT (thread_id) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at")


SCHEMA_VERSION = len(migrations("sqlite"))


async def schema_version(connection: AsyncConnection) -> int:
    """The version the database is at (0 when new)."""
    await connection.execute(text("CREATE TABLE IF NOT EXISTS rag_schema (version INT NOT NULL)"))
    row = (await connection.execute(text("SELECT MAX(version) FROM rag_schema"))).scalar()
    return int(row or 0)


async def migrate(engine: AsyncEngine, target: int | None = None) -> tuple[int, int]:
    """Create or upgrade the schema to `target` (the latest by default); returns (before, after).

    Several processes may start at once on one PostgreSQL: an advisory lock makes them upgrade one after
    the other, and each re-reads the version under it. On SQLite the write transaction does the same.
    """
    steps = migrations(engine.dialect.name)
    target = len(steps) if target is None else target
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_xact_lock(7312026)"))
            else:  # Python's sqlite3 runs DDL outside transactions unless one is begun explicitly
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            before = await schema_version(connection)
            for version in range(before + 1, target + 1):
                for statement in steps[version - 1]:
                    await connection.execute(text(statement))
                await connection.execute(text("INSERT INTO rag_schema (version) VALUES (:v)"), {"v": version})
            return before, max(before, target)
    except (SQLAlchemyError, OSError) as exc:
        raise HistoryError(f"the history database could not be prepared: {exc}") from exc


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# --- reading conversations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThreadRecord:
    """One stored conversation, as listed."""

    id: str
    name: str
    user: str
    created_at: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ThreadSummary:
    """One conversation as the sidebar lists it."""

    id: str
    name: str | None
    created: str  # set by both inserts of a conversation's row (ours and Chainlit's)
    author: str | None
    updated: str | None  # when its latest step was written; None before the first


@dataclass(frozen=True)
class ThreadPage:
    """A page of the sidebar's conversations, and whether more follow."""

    threads: tuple[ThreadSummary, ...]
    has_next: bool


def json_value(value: object) -> dict[str, Any]:
    """A JSON column's value as a dict: SQLite and asyncpg hand back text, other drivers a dict."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


class History:
    """Queries over the history database: users, uploads, export, feedback, and the two of Chainlit's data
    layer that the app replaces (a user's row, the sidebar's page of conversations)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: Settings) -> History:
        return cls(open_engine(database_url(settings)))

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def _rows(self, query: str, **params: object) -> Sequence[Any]:
        try:
            async with self.engine.connect() as connection:
                return (await connection.execute(text(query), params)).mappings().all()
        except SQLAlchemyError as exc:
            raise HistoryError(f"the history database could not be read: {exc}") from exc

    async def _write(self, query: str, **params: object) -> int:
        try:
            async with self.engine.begin() as connection:
                return int((await connection.execute(text(query), params)).rowcount or 0)
        except SQLAlchemyError as exc:
            raise HistoryError(f"the history database could not be written: {exc}") from exc

    # users ------------------------------------------------------------------------------------------
    async def user_record(self, identifier: str) -> tuple[str, Role] | None:
        """(password hash, role) of a password user, or None."""
        rows = await self._rows("SELECT password_hash, role FROM rag_users WHERE identifier = :i", i=identifier)
        return (rows[0]["password_hash"], rows[0]["role"]) if rows else None

    async def put_user(self, identifier: str, password_hash: str, role: Role) -> bool:
        """Add a user or replace their password and role; True when the user is new."""
        existed = await self.user_record(identifier) is not None
        if existed:
            await self._write("UPDATE rag_users SET password_hash = :h, role = :r WHERE identifier = :i",
                              h=password_hash, r=role, i=identifier)
        else:
            await self._write("INSERT INTO rag_users (identifier, password_hash, role, created_at) VALUES (:i, :h, :r, :c)",
                              i=identifier, h=password_hash, r=role, c=now())
        return not existed

    async def remove_user(self, identifier: str) -> bool:
        """Remove a user's sign-in (their conversations stay until deleted)."""
        return await self._write("DELETE FROM rag_users WHERE identifier = :i", i=identifier) > 0

    async def users(self) -> list[tuple[str, Role, str]]:
        """(identifier, role, created) of every password user."""
        rows = await self._rows("SELECT identifier, role, created_at FROM rag_users ORDER BY identifier")
        return [(r["identifier"], r["role"], r["created_at"]) for r in rows]

    # uploads ----------------------------------------------------------------------------------------
    async def record_upload(self, source: str, owner: str) -> None:
        """Remember who added `source` (the first uploader keeps it; a duplicate upload changes nothing)."""
        if not await self._rows("SELECT owner FROM rag_uploads WHERE source = :s", s=source):
            await self._write("INSERT INTO rag_uploads (source, owner, created_at) VALUES (:s, :o, :c)",
                              s=source, o=owner, c=now())

    async def upload_owners(self) -> dict[str, str]:
        rows = await self._rows("SELECT source, owner FROM rag_uploads")
        return {r["source"]: r["owner"] for r in rows}

    async def forget_upload(self, source: str) -> None:
        await self._write("DELETE FROM rag_uploads WHERE source = :s", s=source)

    # conversations ----------------------------------------------------------------------------------
    async def threads(self, user: str | None = None) -> list[ThreadRecord]:
        """Stored conversations, newest first; only `user`'s when given."""
        where = 'WHERE "userIdentifier" = :u' if user is not None else ""
        rows = await self._rows(f'SELECT "id", "name", "userIdentifier", "createdAt", "metadata" FROM threads {where} '
                                'ORDER BY "createdAt" DESC', u=user)
        return [ThreadRecord(r["id"], r["name"] or "", r["userIdentifier"] or "", r["createdAt"] or "",
                             json_value(r["metadata"])) for r in rows]

    async def thread(self, thread_id: str) -> ThreadRecord | None:
        rows = await self._rows('SELECT "id", "name", "userIdentifier", "createdAt", "metadata" FROM threads WHERE "id" = :t',
                                t=thread_id)
        if not rows:
            return None
        r = rows[0]
        return ThreadRecord(r["id"], r["name"] or "", r["userIdentifier"] or "", r["createdAt"] or "", json_value(r["metadata"]))

    async def conversation(self, thread_id: str) -> dict[str, Any]:
        """What the app stored of a conversation ({} when nothing was)."""
        rows = await self._rows("SELECT data FROM rag_conversations WHERE thread_id = :t", t=thread_id)
        return json_value(rows[0]["data"]) if rows else {}

    async def feedback(self, user: str) -> list[tuple[int, dict[str, Any]]]:
        """(thumb value, answer metadata) for every rated answer in `user`'s conversations.

        Chainlit stores a rating against the turn's run step (`on_message`), whose metadata is empty; the
        answer is that run's last assistant message carrying the app's metadata (issue 26: /stats counted
        the ratings but could not group them)."""
        rows = await self._rows(
            'SELECT f."value" AS value, s."id" AS id, s."type" AS type, s."metadata" AS metadata FROM feedbacks f '
            'JOIN steps s ON s."id" = f."forId" JOIN threads t ON t."id" = s."threadId" WHERE t."userIdentifier" = :u',
            u=user)
        runs = [str(r["id"]) for r in rows if r["type"] == "run"]
        answers: dict[str, dict[str, Any]] = {}
        if runs:
            names = {f"r{i}": run for i, run in enumerate(runs)}
            children = await self._rows(
                'SELECT "parentId" AS parent, "metadata" AS metadata FROM steps WHERE "type" = \'assistant_message\' '
                f'AND "parentId" IN ({", ".join(":" + n for n in names)}) ORDER BY "createdAt"', **names)
            for child in children:  # in order: the last answer of a run wins
                metadata = json_value(child["metadata"])
                if isinstance(metadata.get("rag"), dict):
                    answers[str(child["parent"])] = metadata
        return [(int(r["value"]), answers.get(str(r["id"]), json_value(r["metadata"]))) for r in rows]

    # the chat's data layer --------------------------------------------------------------------------
    async def put_chat_user(self, identifier: str, metadata: dict[str, Any]) -> None:
        """Chainlit's row for a signed-in user, as one upsert: simultaneous first sign-ins of one user do
        not collide (Chainlit's own insert would fail the second)."""
        await self._write(
            'INSERT INTO users ("id", "identifier", "createdAt", "metadata") VALUES (:id, :identifier, :created, :metadata) '
            'ON CONFLICT ("identifier") DO UPDATE SET "metadata" = :metadata',
            id=str(uuid.uuid4()), identifier=identifier, created=now(), metadata=json.dumps(metadata))

    async def thread_page(self, user_id: str, first: int, cursor: str | None = None, search: str | None = None,
                          feedback: int | None = None) -> ThreadPage:
        """The sidebar's page of `user_id`'s conversations, most recently active first: their rows only.

        (Chainlit's own query reads every step and element of every conversation of the user for each
        page, which grew with the history without bound.) `search` is matched, any case and literally,
        in the conversations' text; `feedback` keeps those with an answer rated so; `cursor` is the id
        of the last conversation of the previous page.
        """
        # A chat that only ran commands has no title: it is not a conversation to come back to (issue 26).
        where: list[str] = ['t."userId" = :user', 't."name" IS NOT NULL', 't."name" <> \'\'']
        params: dict[str, object] = {"user": user_id}
        if search:
            # Pasted text stays in the chat: searched are the answers and the questions, not what was pasted.
            where.append('EXISTS (SELECT 1 FROM steps s WHERE s."threadId" = t."id" AND LOWER(s."output") LIKE :search '
                         "ESCAPE '\\' AND NOT (s.\"type\" = 'user_message' AND (s.\"command\" = 'paste' "
                         'OR LENGTH(s."output") >= :pasted)))')
            params["search"] = contains_pattern(search.lower())
            params["pasted"] = PASTE_MIN_CHARS
        if feedback is not None:
            where.append('EXISTS (SELECT 1 FROM feedbacks f JOIN steps s ON s."id" = f."forId" '
                         'WHERE s."threadId" = t."id" AND f."value" = :feedback)')
            params["feedback"] = feedback
        rows = await self._rows(
            'SELECT t."id" AS id, t."name" AS name, t."createdAt" AS created, t."userIdentifier" AS author, '
            '(SELECT MAX(s."createdAt") FROM steps s WHERE s."threadId" = t."id") AS updated '
            f'FROM threads t WHERE {" AND ".join(where)}', **params)
        threads = sorted((ThreadSummary(r["id"], r["name"], r["created"], r["author"], r["updated"]) for r in rows),
                         key=lambda t: t.updated or t.created or "", reverse=True)
        start = next((i + 1 for i, t in enumerate(threads) if t.id == cursor), 0) if cursor else 0
        return ThreadPage(tuple(threads[start:start + first]), has_next=len(threads) > start + first)


# --- the rows a chat writes (through `WriteBehind`) ---------------------------------------------------------
# A statement and its parameters, for `WriteBehind.submit`.
Statement = tuple[str, dict[str, Any]]


def upsert_sql(table: str, params: dict[str, Any], updated: Sequence[str]) -> str:
    """INSERT of `params`' columns into `table`, updating `updated` when the id exists (SQLite and PostgreSQL)."""
    columns = ", ".join(f'"{k}"' for k in params)
    values = ", ".join(f":{k}" for k in params)
    updates = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in updated)
    return f'INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ("id") DO UPDATE SET {updates}'


# The display flags Chainlit's get_thread does not read back (steps that open or close by themselves).
STEP_DISPLAY = ('SELECT "id", "defaultOpen", "autoCollapse" FROM steps WHERE "threadId" = :thread '
                'AND ("defaultOpen" OR "autoCollapse")')


def title_row(thread_id: str, title: str) -> Statement:
    """A conversation's title from its first question, unless it has one (renamed, or named before)."""
    return ('UPDATE threads SET "name" = :name WHERE "id" = :id AND ("name" IS NULL OR "name" = \'\')',
            {"id": thread_id, "name": title})


def thread_row(thread_id: str) -> Statement:
    """A conversation's row, if it has none yet (Chainlit fills it in later)."""
    return ('INSERT INTO threads ("id", "createdAt") VALUES (:id, :created) ON CONFLICT ("id") DO NOTHING',
            {"id": thread_id, "created": now()})


def step_row(step: Mapping[str, Any], dialect: str) -> Statement:
    """A step (message, tool call) as Chainlit's data layer would write it, as one upsert.

    JSON columns go as text: the composer's `modes` arrives as a dict, which neither SQLite nor
    PostgreSQL's driver binds; `tags` is a list, which only PostgreSQL has a column type for.
    """
    values: dict[str, Any] = dict(step)
    values.pop("feedback", None)
    if "showInput" in values:
        values["showInput"] = str(values.get("showInput", "")).lower()
    params = {k: v for k, v in values.items() if v is not None and not (isinstance(v, dict) and not v)}
    params["metadata"] = json.dumps(values.get("metadata") or {})
    params["generation"] = json.dumps(values.get("generation") or {})
    if isinstance(params.get("modes"), dict):
        params["modes"] = json.dumps(params["modes"])
    if isinstance(params.get("tags"), list) and dialect == "sqlite":
        params["tags"] = json.dumps(params["tags"])
    return upsert_sql("steps", params, [k for k in params if k != "id"]), params


def element_row(element_id: str, thread_id: str | None, name: str, display: str, for_id: str, mime: str | None,
                props: dict[str, Any]) -> Statement:
    """A custom element, stored as its props (no file store needed); a rewrite updates the props and
    where it is shown."""
    params = {"id": element_id, "threadId": thread_id, "type": "custom", "name": name, "display": display,
              "forId": for_id, "mime": mime, "props": json.dumps(props)}
    return upsert_sql("elements", params, ["props", "forId"]), params  # the latency chart moves to the latest answer


def pdf_row(element_id: str, thread_id: str | None, name: str, display: str, for_id: str, url: str,
            page: int | None) -> Statement:
    """A cited PDF page, stored as the link to its file in the corpus and the page it opens at."""
    params = {"id": element_id, "threadId": thread_id, "type": "pdf", "name": name, "display": display,
              "forId": for_id, "mime": "application/pdf", "url": url, "page": page}
    return upsert_sql("elements", params, ["url", "page", "forId"]), params


def step_deletes(step_id: str) -> list[Statement]:
    """A step's rows and what refers to them, referrers first."""
    return [(f'DELETE FROM {table} WHERE "{column}" = :id', {"id": step_id})
            for table, column in (("feedbacks", "forId"), ("elements", "forId"), ("steps", "id"))]


def conversation_row(thread_id: str, data: dict[str, Any]) -> Statement:
    """What the app remembers of a conversation (memory, choices, stats), replacing what was stored."""
    return SAVE_CONVERSATION, {"thread": thread_id, "data": json.dumps(data), "at": now()}


# --- writing in the background ---------------------------------------------------------------------------
@dataclass
class _Write:
    sql: str
    params: dict[str, Any]
    key: tuple[str, str] | None


class WriteBehind:
    """Writes to the history database in order, off the chat's event loop, in as few transactions as possible.

    A chat rewrites the same step many times while an answer streams (titles, status, the final text):
    writes with the same `key` that are still waiting are merged into the latest one, in place (so a row
    is never written before the rows it refers to). Everything waiting when the writer gets to it goes in
    one transaction; if that fails, each write is retried alone, so one bad row loses only itself.

    The writer runs on a thread of its own with its own event loop and engine: SQLAlchemy's work for
    each transaction (compiling, binding, the driver's round trips) never runs between two streamed
    pieces of an answer.
    """

    def __init__(self, url: str, log: Callable[[str], None]) -> None:
        self.url = url
        self.log = log
        self.pending: list[_Write] = []
        self.by_key: dict[tuple[str, str], _Write] = {}
        self.written = 0
        self.merged = 0
        self._mutex = threading.Lock()
        self._scheduled = False
        self._loop = asyncio.new_event_loop()
        self._engine: AsyncEngine | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="history-writer", daemon=True)
        self._thread.start()

    def submit(self, sql: str, params: dict[str, Any], key: tuple[str, str] | None = None) -> None:
        with self._mutex:
            waiting = self.by_key.get(key) if key is not None else None
            if waiting is not None:
                waiting.sql, waiting.params = sql, params
                self.merged += 1
                return
            write = _Write(sql, params, key)
            self.pending.append(write)
            if key is not None:
                self.by_key[key] = write
            if not self._scheduled:
                self._scheduled = True
                self._idle.clear()
                self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._drain()))

    def forget(self, key: tuple[str, str]) -> None:
        """Later writes with `key` queue after whatever was submitted until now (e.g. after a delete)."""
        with self._mutex:
            self.by_key.pop(key, None)

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        await asyncio.to_thread(self._idle.wait)

    def close(self) -> None:
        """Write what is waiting, then stop the writer's thread."""
        self._idle.wait()
        if self._engine is not None:
            asyncio.run_coroutine_threadsafe(self._engine.dispose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    async def _drain(self) -> None:
        if self._engine is None:
            self._engine = open_engine(self.url)
        while True:
            with self._mutex:
                batch, self.pending = self.pending, []
                self.by_key.clear()
                if not batch:
                    self._scheduled = False
                    self._idle.set()
                    return
            try:
                async with self._engine.begin() as connection:
                    for write in batch:
                        await connection.execute(text(write.sql), write.params)
            except SQLAlchemyError:
                for write in batch:
                    try:
                        async with self._engine.begin() as connection:
                            await connection.execute(text(write.sql), write.params)
                    except SQLAlchemyError as exc:
                        self.log(f"history write failed: {exc}")
            self.written += len(batch)
