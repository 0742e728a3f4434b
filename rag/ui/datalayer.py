"""The history data layer: Chainlit's SQLAlchemy data layer on our schema, its SQL in `rag.chat.history`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.utils import queue_until_user_message
from chainlit.element import Element
from chainlit.step import StepDict
from chainlit.types import PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from chainlit.user import PersistedUser

from rag.chat.history import (
    STEP_DISPLAY,
    History,
    HistoryError,
    ThreadPage,
    WriteBehind,
    configure_engine,
    conversation_row,
    element_row,
    json_value,
    pdf_row,
    step_deletes,
    step_row,
    thread_row,
    title_row,
)
from rag.chat.titles import conversation_title
from rag.documents.links import corpus_link

log = logging.getLogger(__name__)


class HistoryLayer(SQLAlchemyDataLayer):
    """Chainlit's SQLAlchemy data layer on our schema (rag.chat.history), SQLite or PostgreSQL.

    Custom elements (sources, side-by-side columns, the latency chart) are stored as their props, so a
    resumed conversation shows them without a file store. A cited PDF page is stored as a link to its file
    in the corpus (`rag.ui.server.corpus_files` serves it to signed-in users); a file since removed
    shows as a preview that cannot load.
    """

    def __init__(self, url: str, corpus_dir: Path | None = None) -> None:
        chainlit_log = logging.getLogger("chainlit")
        level = chainlit_log.level
        chainlit_log.setLevel(logging.ERROR)  # its "no storage client" warning is not true of custom elements
        try:
            super().__init__(conninfo=url)
        finally:
            chainlit_log.setLevel(level)
        configure_engine(self.engine)
        self.history = History(self.engine)  # our queries, on Chainlit's engine (closed with the layer)
        # Steps and elements are written behind the chat (merged while an answer streams), never awaited by it.
        self.writer = WriteBehind(url, log.warning)
        self.threads: set[str] = set()  # conversations known to have their row: no lookup per step
        self.titled: set[str] = set()  # conversations this process named from their first question
        self.corpus_dir = corpus_dir

    async def create_user(self, user: cl.User) -> PersistedUser | None:
        """As Chainlit's, as one upsert: simultaneous first sign-ins of one user do not collide."""
        try:
            await self.history.put_chat_user(user.identifier, user.metadata)
        except HistoryError as exc:  # as Chainlit's own SQL: logged, and the lookup below says None
            log.warning("%s", exc)
        return await self.get_user(user.identifier)

    def _thread_row(self, thread_id: str | None) -> None:
        """The conversation's row, queued before anything that refers to it (Chainlit looks it up before
        every step). Nothing here awaits: writes queue in the order the chat made them, so a step's
        final state can never be overtaken by an earlier one."""
        if thread_id and thread_id not in self.threads:
            self.writer.submit(*thread_row(thread_id))
            self.threads.add(thread_id)

    @queue_until_user_message()
    async def create_step(self, step_dict: StepDict) -> None:
        """What Chainlit's writes, written behind; the first question names its conversation."""
        thread_id = step_dict.get("threadId")
        self._thread_row(thread_id)
        sql, params = step_row(step_dict, self.engine.dialect.name)
        self.writer.submit(sql, params, key=("step", str(params["id"])))
        if thread_id and step_dict.get("type") == "user_message" and thread_id not in self.titled:
            title = conversation_title(str(step_dict.get("output") or ""), step_dict.get("command"))
            if title is not None:
                self.titled.add(thread_id)
                self.writer.submit(*title_row(thread_id, title))

    async def update_thread(self, thread_id: str, name: str | None = None, user_id: str | None = None,
                            metadata: dict[str, Any] | None = None, tags: list[str] | None = None) -> None:
        """Chainlit's write, except the name it gives a new conversation (its first message, whatever it
        is: a command, a whole pasted text): the first question names it instead (`create_step`). A
        rename by the user (a name without a user) is kept as given."""
        if name is not None and user_id is not None:
            name = None
        await super().update_thread(thread_id, name=name, user_id=user_id, metadata=metadata, tags=tags)

    @queue_until_user_message()
    async def update_step(self, step_dict: StepDict) -> None:
        """The same upsert as a new step."""
        await self.create_step(step_dict)

    @queue_until_user_message()
    async def delete_step(self, step_id: str) -> None:
        """The step, its elements and its feedback, written behind (after its earlier writes)."""
        self.writer.forget(("step", step_id))
        for sql, params in step_deletes(step_id):
            self.writer.submit(sql, params)

    @queue_until_user_message()
    async def create_element(self, element: Element) -> None:
        """Custom elements as their props, PDF pages of the corpus as links to their file (the rest are files
        of the session: uploads in flight)."""
        if not element.for_id:
            return
        if element.type == "custom":
            row = element_row(element.id, element.thread_id, element.name, element.display, element.for_id,
                              element.mime, getattr(element, "props", {}))
        elif element.type == "pdf" and (link := corpus_link(self.corpus_dir, element.path)) is not None:
            row = pdf_row(element.id, element.thread_id, element.name, element.display, element.for_id, link,
                          getattr(element, "page", None))
        else:
            return
        self._thread_row(element.thread_id)
        self.writer.submit(*row, key=("element", element.id))

    def save_conversation(self, thread_id: str, data: dict[str, Any]) -> None:
        """Store what the app remembers of a conversation, written behind."""
        self._thread_row(thread_id)
        self.writer.submit(*conversation_row(thread_id, data), key=("conversation", thread_id))

    async def delete_thread(self, thread_id: str) -> None:
        """Chainlit's delete, once every write queued before it has landed."""
        await self.writer.flush()
        self.threads.discard(thread_id)
        await super().delete_thread(thread_id)

    async def list_threads(self, pagination: Pagination, filters: ThreadFilter) -> PaginatedResponse:
        """The sidebar's page of conversations: their rows only (`History.thread_page`)."""
        await self.writer.flush()  # the sidebar shows what was just written
        if not filters.userId:
            raise ValueError("userId is required")
        feedback = int(filters.feedback) if filters.feedback is not None else None
        try:
            page = await self.history.thread_page(filters.userId, pagination.first, pagination.cursor, filters.search, feedback)
        except HistoryError as exc:  # as Chainlit's own SQL: logged, and the sidebar lists nothing
            log.warning("%s", exc)
            page = ThreadPage((), has_next=False)
        threads = page.threads
        data = [ThreadDict(id=t.id, createdAt=t.created, name=t.name, userId=filters.userId, userIdentifier=t.author,
                           tags=None, metadata={}, steps=[], elements=[]) for t in threads]
        return PaginatedResponse(
            pageInfo=PageInfo(hasNextPage=page.has_next, startCursor=threads[0].id if threads else None,
                              endCursor=threads[-1].id if threads else None),
            data=data)

    async def close(self) -> None:
        """Write what is waiting, then close Chainlit's engine."""
        await asyncio.to_thread(self.writer.close)
        await super().close()

    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        """As stored, with JSON columns as objects (SQLite and asyncpg return text; the page wants objects)."""
        await self.writer.flush()
        thread = await super().get_thread(thread_id)
        if thread is not None:
            thread["metadata"] = json_value(thread.get("metadata"))
            for step in thread.get("steps") or []:
                metadata = json_value(step.get("metadata"))
                step["metadata"] = metadata
                if isinstance(metadata.get("icon"), str):  # Chainlit stores a step's icon in its metadata
                    step["icon"] = metadata["icon"]
            for element in thread.get("elements") or []:
                props = element.get("props")
                if isinstance(props, str):
                    element["props"] = json_value(props)
            await self._step_display(thread)
        return thread

    async def _step_display(self, thread: ThreadDict) -> None:
        """Which steps open by themselves and which close (Chainlit's own query leaves both out): the
        latest answer's latency step comes back open, the earlier ones closed, as they were."""
        rows = await self.execute_sql(STEP_DISPLAY, {"thread": thread["id"]})
        shown = {str(r["id"]): r for r in rows} if isinstance(rows, list) else {}
        for step in thread.get("steps") or []:
            row = shown.get(str(step.get("id")))
            if row is not None:
                step["defaultOpen"] = bool(row["defaultOpen"])
                step["autoCollapse"] = bool(row["autoCollapse"])

