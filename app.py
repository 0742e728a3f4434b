"""Chainlit handlers only: translate pipeline events into messages, steps and elements.

All logic lives in `rag/`; this module reads the settings once, builds the services at start-up, and turns
each `rag.types` event into what the chat shows. Errors become one readable line here, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.utils import queue_until_user_message
from chainlit.element import Element
from chainlit.step import StepDict, TrueStepType
from chainlit.types import CommandDict, PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from chainlit.user import PersistedUser
from chainlit.input_widget import InputWidget, Select, Slider
from starlette.datastructures import Headers

from rag import columns as compare_columns
from rag import conversation as chat
from rag import export as exporting
from rag import markdown as md
from rag import progress
from rag.auth import LOCAL_USER, Person, auth_secret, check_exposure, local_person, may_delete, sign_in
from rag.batching import TokenBatcher
from rag.config import BOUNDS, Settings, load_settings
from rag.conversation import Conversation
from rag.discovery import HOW_TO_CONNECT, Resolution
from rag.errors import RagError, UnsupportedDocument
from rag.feedback import answer_metadata, thumbs_markdown
from rag.history import (
    SAVE_CONVERSATION,
    History,
    WriteBehind,
    configure_engine,
    contains_pattern,
    database_url,
    json_value,
    migrate,
    now,
)
from rag.library import display_name, readable_upload_name
from rag.options import MODES, ChatChoices
from rag.paste import SOCKET_BUFFER_BYTES, PastedSource, split_pasted, too_long
from rag.runtime import Services, build_services
from rag.session import SessionStats
from rag.watching import FolderWatcher
from rag.units import count, format_ms, format_size
from rag.types import (
    Answer,
    Comparison,
    EscalationDecided,
    Generation,
    ModelFailed,
    ModelFinished,
    ModelStarted,
    ReasoningDelta,
    Retrieved,
    SourceRef,
    StageFinished,
    TokenDelta,
)

log = logging.getLogger("app")
NBSP = "\u00a0"

# The app's long-lived services (settings, index, model clients), built once by `startup()` and shared
# by every chat session; nothing per-session lives here.
_services: Services | None = None


def services() -> Services:
    """The app's shared services."""
    if _services is None:
        raise RuntimeError("the app has not started: on_app_startup builds the services")
    return _services


@cl.on_app_startup
async def startup() -> None:
    """Read the settings, build the services, remove upload leftovers of a crash, index the corpus."""
    global _services
    try:
        settings = load_settings()
        check_exposure(settings, os.environ.get("CHAINLIT_HOST", "127.0.0.1"))
        history = await _open_history(settings) if settings.history else None
    except RagError as exc:
        # The one place start-up fails: one line naming the variable. Raising here would make the server
        # print its lifespan traceback around it.
        sys.stderr.write(f"{exc}\n")
        sys.stderr.flush()
        os._exit(2)
    _same_origin_websocket()
    _own_files_folder()
    svc = build_services(settings, own_port=int(os.environ.get("CHAINLIT_PORT", "8000")))
    svc.history = history
    try:
        removed = await asyncio.to_thread(svc.library.remove_leftovers)
        if removed:
            log.warning("removed %d unfinished upload(s) left by an interrupted run", removed)
        await asyncio.to_thread(svc.retriever.warm_up)  # loads the store: an unchanged corpus is not parsed
    except RagError as exc:
        log.error("corpus not indexed at start-up: %s", exc)
    # Changes in the folder are picked up in the background; questions never walk it.
    svc.watcher = FolderWatcher(settings.corpus_dir, svc.retriever.refresh, settings.watch_interval_s)
    svc.watcher.start()
    # The raw postings that make the next upload incremental, built while nobody waits for them.
    asyncio.get_running_loop().run_in_executor(None, svc.retriever.index.prepare_updates)
    _services = svc


async def _open_history(settings: Settings) -> History:
    """Create or upgrade the history database, give Chainlit its data layer, and turn on sign-in.

    Chainlit shows history only to a signed-in user. RAG_AUTH=local signs everyone in as the one local
    user without a form (header sign-in; start-up refused on a non-loopback host unless allowed);
    RAG_AUTH=password asks for a name and password checked against `rag users`. Registered here, not at
    import: the sign-in secret is read or created from the settings first.
    """
    history = History.open(settings)
    before, after = await migrate(history.engine)
    if before != after:
        log.info("history database at schema version %d (was %d)", after, before)
    url = database_url(settings)
    cl.data_layer(lambda: _HistoryLayer(url))
    os.environ["CHAINLIT_AUTH_SECRET"] = auth_secret(settings)
    if settings.auth == "password":
        if not await history.users():
            log.warning("RAG_AUTH=password but no users yet: add one with `rag users add NAME`")

        async def password_sign_in(name: str, password: str) -> cl.User | None:
            person = await sign_in(history, name, password)
            return None if person is None else cl.User(identifier=person.identifier, metadata={"role": person.role})

        cl.password_auth_callback(password_sign_in)
    else:
        async def local_sign_in(headers: Headers) -> cl.User | None:
            return cl.User(identifier=LOCAL_USER, metadata={"role": "admin"})

        cl.header_auth_callback(local_sign_in)
    return history


def _upsert(table: str, params: dict[str, Any], updated: list[str]) -> str:
    """INSERT of `params`' columns into `table`, updating `updated` when the id exists (SQLite and PostgreSQL)."""
    columns = ", ".join(f'"{k}"' for k in params)
    values = ", ".join(f":{k}" for k in params)
    updates = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in updated)
    return f'INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ("id") DO UPDATE SET {updates}'


class _HistoryLayer(SQLAlchemyDataLayer):
    """Chainlit's SQLAlchemy data layer on our schema (rag.history), SQLite or PostgreSQL.

    Custom elements (sources, side-by-side columns, the latency chart) are stored as their props, so a
    resumed conversation shows them without a file store. PDF viewers are not stored: they open files of
    the corpus, and the sources element keeps each passage's page.
    """

    def __init__(self, url: str) -> None:
        chainlit_log = logging.getLogger("chainlit")
        level = chainlit_log.level
        chainlit_log.setLevel(logging.ERROR)  # its "no storage client" warning is not true of custom elements
        try:
            super().__init__(conninfo=url)
        finally:
            chainlit_log.setLevel(level)
        configure_engine(self.engine)
        # Steps and elements are written behind the chat (merged while an answer streams), never awaited by it.
        self.writer = WriteBehind(url, log.warning)
        self.threads: set[str] = set()  # conversations known to have their row: no lookup per step

    async def create_user(self, user: cl.User) -> PersistedUser | None:
        """As Chainlit's, as one upsert: simultaneous first sign-ins of one user do not collide."""
        await self.execute_sql(
            'INSERT INTO users ("id", "identifier", "createdAt", "metadata") VALUES (:id, :identifier, :created, :metadata) '
            'ON CONFLICT ("identifier") DO UPDATE SET "metadata" = :metadata',
            {"id": str(uuid.uuid4()), "identifier": user.identifier, "created": now(), "metadata": json.dumps(user.metadata)})
        return await self.get_user(user.identifier)

    def _thread_row(self, thread_id: str | None) -> None:
        """The conversation's row, queued before anything that refers to it (Chainlit looks it up before
        every step). Nothing here awaits: writes queue in the order the chat made them, so a step's
        final state can never be overtaken by an earlier one."""
        if thread_id and thread_id not in self.threads:
            self.writer.submit('INSERT INTO threads ("id", "createdAt") VALUES (:id, :created) ON CONFLICT ("id") DO NOTHING',
                               {"id": thread_id, "created": now()})
            self.threads.add(thread_id)

    @queue_until_user_message()
    async def create_step(self, step_dict: StepDict) -> None:
        """What Chainlit's writes, written behind. JSON columns as text (the composer's `modes` arrives as a
        dict, which neither SQLite nor PostgreSQL's driver binds)."""
        self._thread_row(step_dict.get("threadId"))
        step: dict[str, Any] = dict(step_dict)
        step.pop("feedback", None)
        if "showInput" in step:
            step["showInput"] = str(step.get("showInput", "")).lower()
        params = {k: v for k, v in step.items() if v is not None and not (isinstance(v, dict) and not v)}
        params["metadata"] = json.dumps(step.get("metadata") or {})
        params["generation"] = json.dumps(step.get("generation") or {})
        if isinstance(params.get("modes"), dict):
            params["modes"] = json.dumps(params["modes"])
        if isinstance(params.get("tags"), list) and self.engine.dialect.name == "sqlite":
            params["tags"] = json.dumps(params["tags"])
        self.writer.submit(_upsert("steps", params, [k for k in params if k != "id"]), params, key=("step", str(params["id"])))

    @queue_until_user_message()
    async def update_step(self, step_dict: StepDict) -> None:
        await self.create_step(step_dict)

    @queue_until_user_message()
    async def delete_step(self, step_id: str) -> None:
        self.writer.forget(("step", step_id))
        for table, column in (("feedbacks", "forId"), ("elements", "forId"), ("steps", "id")):
            self.writer.submit(f'DELETE FROM {table} WHERE "{column}" = :id', {"id": step_id})

    @queue_until_user_message()
    async def create_element(self, element: Element) -> None:
        if element.type != "custom" or not element.for_id:
            return
        self._thread_row(element.thread_id)
        params = {"id": element.id, "threadId": element.thread_id, "type": "custom", "name": element.name,
                  "display": element.display, "forId": element.for_id, "mime": element.mime,
                  "props": json.dumps(getattr(element, "props", {}))}
        self.writer.submit(_upsert("elements", params, ["props"]), params, key=("element", element.id))

    def save_conversation(self, thread_id: str, data: dict[str, Any]) -> None:
        self._thread_row(thread_id)
        self.writer.submit(SAVE_CONVERSATION, {"thread": thread_id, "data": json.dumps(data), "at": now()},
                           key=("conversation", thread_id))

    async def delete_thread(self, thread_id: str) -> None:
        await self.writer.flush()
        self.threads.discard(thread_id)
        await super().delete_thread(thread_id)

    async def list_threads(self, pagination: Pagination, filters: ThreadFilter) -> PaginatedResponse:
        """The sidebar's page of conversations: their rows only. (Chainlit's reads every step and element
        of every conversation of the user for each page, which grew with the history without bound.)"""
        await self.writer.flush()  # the sidebar shows what was just written
        if not filters.userId:
            raise ValueError("userId is required")
        where: list[str] = ['t."userId" = :user']
        params: dict[str, object] = {"user": filters.userId}
        if filters.search:
            where.append('EXISTS (SELECT 1 FROM steps s WHERE s."threadId" = t."id" AND LOWER(s."output") LIKE :search '
                         "ESCAPE '\\')")
            params["search"] = contains_pattern(filters.search.lower())
        if filters.feedback is not None:
            where.append('EXISTS (SELECT 1 FROM feedbacks f JOIN steps s ON s."id" = f."forId" '
                         'WHERE s."threadId" = t."id" AND f."value" = :feedback)')
            params["feedback"] = int(filters.feedback)
        rows = await self.execute_sql(
            'SELECT t."id" AS id, t."name" AS name, t."createdAt" AS created, t."userIdentifier" AS author, '
            '(SELECT MAX(s."createdAt") FROM steps s WHERE s."threadId" = t."id") AS updated '
            f'FROM threads t WHERE {" AND ".join(where)}', params)
        threads = sorted(rows if isinstance(rows, list) else [], key=lambda r: r["updated"] or r["created"] or "", reverse=True)
        start = next((i + 1 for i, r in enumerate(threads) if r["id"] == pagination.cursor), 0) if pagination.cursor else 0
        page = threads[start:start + pagination.first]
        data = [ThreadDict(id=r["id"], createdAt=r["created"], name=r["name"], userId=filters.userId,
                           userIdentifier=r["author"], tags=None, metadata={}, steps=[], elements=[]) for r in page]
        return PaginatedResponse(
            pageInfo=PageInfo(hasNextPage=len(threads) > start + pagination.first,
                              startCursor=page[0]["id"] if page else None, endCursor=page[-1]["id"] if page else None),
            data=data)

    async def close(self) -> None:
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
        return thread


def _own_files_folder() -> None:
    """A folder of this process's own for Chainlit's per-session files (uploads in flight, elements).

    Chainlit keeps them under `<app folder>/.files` and deletes that whole folder when its server stops,
    so of two app processes started from one folder (several workers behind a proxy), stopping one broke
    the other's next answer ("No such file or directory: .files/<session>"). Each process now owns a
    private temporary folder, removed when it stops.
    """
    import chainlit.config
    import chainlit.server

    own = Path(tempfile.mkdtemp(prefix="rag-chainlit-files-"))
    chainlit.config.FILES_DIRECTORY = own  # read by each session when it stores a file
    chainlit.server.FILES_DIRECTORY = own  # removed by the server at shutdown


def _same_origin_websocket() -> None:
    """Accept websocket connections only from pages of the app's own origin.

    Chainlit creates its Socket.IO server with CORS handling switched off (`cors_allowed_origins=[]`),
    so any web page the user visits could open a chat session in their name. `None` is engine.io's
    same-origin check (Origin must match the Host, or X-Forwarded-Host behind a proxy).
    """
    from chainlit.server import sio

    sio.eio.cors_allowed_origins = None
    # Room for the longest message the chat takes (a longer one gets an answer saying so, not a dropped
    # connection: Socket.IO closes it, silently, on a frame over its buffer).
    sio.eio.max_http_buffer_size = max(sio.eio.max_http_buffer_size, SOCKET_BUFFER_BYTES)


@cl.on_app_shutdown
async def shutdown() -> None:
    """Close the HTTP clients."""
    if _services is not None:
        await _services.aclose()


@cl.set_starters
async def starters(user: object = None, language: object = None) -> list[cl.Starter]:
    """Questions that show what the app does."""
    return [
        cl.Starter(label="How does escalation work?", message="When does phi-4-mini hand a question over to gpt-oss-20b, and why?"),
        cl.Starter(label="Run the models on Foundry Local", message="How do I run phi-4-mini and gpt-oss-20b on Foundry Local and connect this app?"),
        cl.Starter(label="Read the latency steps", message="What does time to first token mean in the latency steps?"),
        cl.Starter(label="Small vs large model", message="What are the trade-offs between phi-4-mini and gpt-oss-20b?"),
    ]


@cl.on_chat_start
async def start() -> None:
    """Per-session state, and a notice saying which models answer (or how to connect one)."""
    svc = services()
    _keep(chat.start(svc.options))
    cl.user_session.set("stats", SessionStats())
    await cl.context.emitter.set_commands(COMMANDS)
    await cl.ChatSettings(_settings_widgets(ChatChoices.of(svc.options))).send()
    try:
        documents = await svc.retriever.documents()
        resolution = await svc.directory.resolve()
    except RagError as exc:
        await _notice(f"⚠️ {md.plain(str(exc))}")
        return
    served = sum(1 for d in documents if d.status == "ok")
    skipped = len(documents) - served
    corpus = f"{served} documents in {md.code(str(svc.settings.corpus_dir))}" + (f" ({skipped} skipped: `/docs` says why)" if skipped else "")
    await _notice(f"{_models_notice(resolution)}\n\nAnswering from {corpus}.")
    if resolution.small is None and resolution.large is None:
        cl.user_session.set("watcher", asyncio.create_task(_announce_when_a_server_appears()))


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    """A stored conversation reopened (from the sidebar, after a reload, or on another app process): its
    messages, steps and elements are shown by Chainlit; this restores what the app remembers, so a
    follow-up is retrieved and answered with the earlier turns, under the chat settings it had."""
    history = services().history
    try:
        metadata = await history.conversation(thread["id"]) if history is not None else {}
    except RagError as exc:
        log.warning("conversation %s could not be read: %s", thread["id"], exc)
        metadata = {}
    metadata = metadata or json_value(thread.get("metadata"))  # stored by an older version
    stored = metadata.get("rag_conversation")
    conversation = chat.from_dict(stored) if isinstance(stored, dict) else chat.start(services().options)
    _keep(conversation)
    cl.user_session.set("stats", SessionStats.from_dict(metadata.get("rag_stats")))
    await cl.context.emitter.set_commands(COMMANDS)
    await cl.ChatSettings(_settings_widgets(conversation.choices)).send()


def _keep(conversation: Conversation) -> None:
    """Make `conversation` this chat's state."""
    cl.user_session.set("conversation", conversation)


def _save_conversation() -> None:
    """Store the conversation, its choices and stats with the thread, through the background writer:
    history never delays an answer, and later states always land after earlier ones."""
    layer = get_data_layer()
    thread_id = cl.context.session.thread_id
    if not isinstance(layer, _HistoryLayer) or not thread_id:
        return
    data = {"rag_conversation": chat.to_dict(_conversation()), "rag_stats": _session_stats().to_dict()}
    layer.save_conversation(thread_id, data)


# The composer's commands (typed as /docs, or picked from the commands menu).
COMMANDS: list[CommandDict] = [
    {"id": command, "icon": icon, "description": description, "button": False, "persistent": False, "selected": False}
    for command, icon, description in (
        ("docs", "files", "The documents: type, size, chunks, skip reasons; delete uploads"),
        ("stats", "gauge", "This session: escalation rate and reasons, latency per stage and model, cost"),
        ("chart", "chart-column", "The latency chart of this session's answers"),
        ("paste", "clipboard-paste", "Paste reference text to answer from (kept in this chat, not saved unless you ask)"),
        ("export", "download", "Download this conversation as Markdown and JSON (sources, models, timings)"),
    )
]


async def _notice(content: str) -> None:
    """A status line from the app itself. A system message, so the starter questions stay on screen (the
    welcome screen hides as soon as the chat holds a user or assistant message)."""
    await cl.Message(content=content, author="system", type="system_message").send()


async def _announce_when_a_server_appears(every_s: float = 4.0, for_s: float = 3600.0) -> None:
    """Say in the chat when a model server started after the greeting has been found."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_s
    while loop.time() < deadline:
        await asyncio.sleep(every_s)
        resolution = await services().directory.resolve()
        if resolution.small is not None or resolution.large is not None:
            await _notice("✅ A model server is up. " + _models_notice(resolution))
            return


@cl.on_chat_end
async def end() -> None:
    """Stop watching for a model server for a chat that is gone."""
    watcher = cl.user_session.get("watcher")
    if isinstance(watcher, asyncio.Task):
        watcher.cancel()


def _slider(name: str, label: str, initial: float) -> Slider:
    """A chat-settings slider over the setting's own range (rag.config.BOUNDS)."""
    bound = BOUNDS[name]
    return Slider(id=name, label=label, initial=initial, min=bound.low, max=bound.high, step=bound.step)


def _settings_widgets(choices: ChatChoices) -> list[InputWidget]:
    return [
        Select(id="mode", label="Mode", items={label: value for value, label in MODES.items()}, initial_value=choices.mode,
               description="Which model answers; Side by side runs both on the same sources."),
        _slider("temperature", "Temperature", choices.temperature),
        _slider("top_k", "Passages per answer (top-k)", choices.top_k),
        _slider("small_max_tokens", "phi-4-mini max tokens", choices.small_max_tokens),
        _slider("large_max_tokens", "gpt-oss-20b max tokens (it reasons first: leave room)", choices.large_max_tokens),
        _slider("min_answer_tokens", "Escalate drafts shorter than (tokens)", choices.min_answer_tokens),
        _slider("min_support", "Escalate when retrieval support is below (probability)", choices.min_support),
        _slider("skip_draft_support", "Skip the draft when support is below (probability)", choices.skip_draft_support),
    ]


@cl.on_settings_update
async def settings_changed(values: dict[str, object]) -> None:
    """Apply to this session's next answers only."""
    _keep(chat.choose(_conversation(), values))
    _save_conversation()


def _conversation() -> Conversation:
    conversation = cl.user_session.get("conversation")
    if not isinstance(conversation, Conversation):
        conversation = chat.start(services().options)
        _keep(conversation)
    return conversation


def _session_stats() -> SessionStats:
    stats = cl.user_session.get("stats")
    if not isinstance(stats, SessionStats):
        stats = SessionStats()
        cl.user_session.set("stats", stats)
    return stats


async def update_chart() -> None:
    """Show the session's latency chart below the latest answer, where the user is looking.

    The previous chart message is removed, so there is one chart, always at the bottom. With no model
    timings yet (every answer an extract), it says so instead of plotting an axis of zeros.
    """
    previous = cl.user_session.get("chart_message_id")  # an id, so it survives a resume
    if isinstance(previous, str) and previous:
        await cl.Message(content="", id=previous).remove()
    props = _session_stats().chart_props()
    if not any(point["runs"] for point in props["points"]):
        message = cl.Message(content="**Latency this session**: nothing to plot yet. Answers so far came from the "
                             "documents (extracts), with no model timings; `/stats` has the numbers.", author="stats")
    else:
        chart = cl.CustomElement(name="LatencyChart", props=props, display="inline")
        message = cl.Message(content="**Latency this session**, redrawn after each answer (`/stats` for the numbers).",
                             elements=_elements(chart), author="stats")
    await message.send()
    cl.user_session.set("chart_message_id", message.id)


def _models_notice(resolution: Resolution) -> str:
    found = [r for r in (resolution.small, resolution.large) if r is not None]
    if not found:
        # The heading says nothing was found; the list says where the app looked and what else went wrong.
        looked = [f"Looked for: {resolution.tried}"] if resolution.tried else []
        problems = "\n".join(f"- {md.plain(p)}" for p in [*looked, *resolution.other_problems])
        return (
            "**No model server found**, so answers are extracts of the documents (clearly labelled). "
            "A server you start now is picked up by itself, and this chat will say so.\n\n"
            f"{problems}\n\n{HOW_TO_CONNECT}"
        )
    lines = [f"- **{md.plain(r.alias)}** → {md.code(r.model_id)} on {r.server.name} ({md.code(r.server.base_url)})"
             for r in found]
    lines += [f"- ⚠️ {md.plain(p)}" for p in resolution.problems]
    return "Connected models:\n" + "\n".join(lines)


@cl.on_message
async def answer(message: cl.Message) -> None:
    """Commands, then attached files (indexed before answering), then the pipeline."""
    if (refusal := too_long(len(message.content), services().settings.max_file_mb)) is not None:
        await cl.Message(content=f"⚠️ {refusal}").send()
        return
    text = message.content.strip()
    first = text.split(maxsplit=1)[0] if text else ""
    command = message.command or (first[1:] if first in {f"/{c['id']}" for c in COMMANDS} else None)
    if command == "docs":
        await show_documents()
        return
    if command == "stats":
        await show_stats()
        return
    if command == "export":
        await export_conversation()
        return
    if not await _still_signed_in():
        return
    if command == "chart":
        await update_chart()
        return
    pipeline = services().pipeline
    files = [e for e in (message.elements or []) if getattr(e, "path", None)]
    # Pasted text grounds the answer, unless files are attached: then they do (and a kept paste waits).
    pasted_text = await _pasted(message, text, command == "paste") if not files else None
    if pasted_text is not None:
        source, question = pasted_text
        if source is None or question is None:
            return  # stored for the next question, or refused: the reply said which
        pipeline, text = pipeline.with_searcher(source), question
    focus: frozenset[str] | None = None
    if files:
        focus = await ingest(files, message)
        if not text:
            return
    conversation = _conversation()
    options = conversation.options(services().options)
    reply = cl.Message(content="")
    await reply.send()
    view: _AnswerView = _CompareView(reply) if conversation.side_by_side else _AnswerView(reply)
    run = pipeline.compare if conversation.side_by_side else pipeline.run
    try:
        async for event in run(text, conversation.turns(), options, focus or None):
            # Bookkeeping before rendering: once the answer shows, the user may send the next message.
            if isinstance(event, Answer):
                _keep(chat.remember_answer(_conversation(), text, event, now()))
                _session_stats().record_answer(event)
            elif isinstance(event, Comparison):
                _keep(chat.remember_comparison(_conversation(), text, event, now()))
                _session_stats().record_comparison(event)
            await view.on(event)
            if isinstance(event, (Answer, Comparison)):
                await update_chart()
                _save_conversation()
    except asyncio.CancelledError:
        await view.stopped()
        raise
    except RagError as exc:
        await view.failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - the chat must keep serving; the log keeps the traceback
        log.exception("answering failed")
        await view.failed(f"Something went wrong while answering ({type(exc).__name__}: {exc}).")


async def show_stats() -> None:
    """The /stats command: this session's numbers, then the thumbs-up share per mode and model."""
    parts = [_session_stats().render_markdown()]
    history = services().history
    if history is not None:
        try:
            parts.append(thumbs_markdown(await history.feedback(_person().identifier)))
        except RagError as exc:
            parts.append(f"⚠️ Feedback could not be read: {md.plain(str(exc))}")
    await cl.Message(content="\n\n".join(parts), author="stats").send()


async def export_conversation() -> None:
    """The /export command: this conversation as Markdown and JSON files to download."""
    conversation = _conversation()
    if not conversation.exchanges:
        await cl.Message(content="Nothing to export yet: ask a question first.").send()
        return
    title = conversation.exchanges[0].question
    meta = {"exported": now(), "user": _person().identifier}
    stem = exporting.file_stem(title)
    files = [
        cl.File(name=f"{stem}.md", content=exporting.to_markdown(conversation, title, meta).encode("utf-8"), mime="text/markdown", display="inline"),
        cl.File(name=f"{stem}.json", content=exporting.to_json(conversation, title, meta).encode("utf-8"), mime="application/json", display="inline"),
    ]
    await cl.Message(content=f"This conversation, {count(len(conversation.exchanges), 'exchange')}: Markdown to read, JSON "
                     "to process (`rag export` does the same from the command line).", elements=_elements(*files)).send()


def _person() -> Person:
    """Who this chat belongs to: the signed-in user, or the single local user when sign-in is off."""
    user = cl.user_session.get("user")
    identifier = getattr(user, "identifier", None)
    if not identifier or identifier == LOCAL_USER:
        return local_person()
    role = (getattr(user, "metadata", None) or {}).get("role")
    return Person(identifier, "admin" if role == "admin" else "user")


async def _verified_person() -> Person | None:
    """The user with their role as stored now (a sign-in token keeps the role it was issued with), or None,
    said in the chat, when their account has been removed since they signed in."""
    svc = services()
    person = _person()
    if svc.history is None or svc.settings.auth != "password" or person.identifier == LOCAL_USER:
        return person
    try:
        record = await svc.history.user_record(person.identifier)
    except RagError as exc:
        await cl.Message(content=f"⚠️ {md.plain(str(exc))}").send()
        return None
    if record is None:
        await cl.Message(content="⚠️ Your account has been removed: sign out to sign in as another user.").send()
        return None
    return Person(person.identifier, record[1])


async def _still_signed_in() -> bool:
    return await _verified_person() is not None


async def _pasted(message: cl.Message, text: str, command: bool) -> tuple[PastedSource | None, str | None] | None:
    """Pasted reference text in this message (or kept from /paste for this question), or None.

    Returns (source, question): the question is None when the text came without one; it is then kept for
    the next question in this chat. The text is never written anywhere unless the user saves it.
    """
    body = text.removeprefix("/paste").strip() if command else text
    pasted = split_pasted(body, always=command)
    kept = cl.user_session.get("pasted")
    if pasted is None:
        if isinstance(kept, PastedSource) and not command:
            cl.user_session.set("pasted", None)  # kept text grounds this one question
            return kept, text
        if command:
            cl.user_session.set("pasted", None)
            await cl.Message(content="Paste reference text after `/paste` (and, if you like, your question as its "
                             "last paragraph); it grounds the answer without being saved.").send()
            return None, None
        return None
    svc = services()
    try:
        source = await PastedSource.build(pasted.text, svc.library.corpus, svc.retriever.analyzer, svc.settings.engine,
                                          svc.settings.bm25_k1, svc.settings.bm25_b)
    except UnsupportedDocument as exc:
        await cl.Message(content=f"⚠️ The pasted text cannot be used: {md.plain(exc.reason)}.").send()
        return None, None
    save = cl.Action(name="save_paste", payload={"text": pasted.text}, label="Save it to the corpus", icon="save",
                     tooltip="Store the pasted text as a document in the uploads folder")
    summary = (f"📋 Pasted text: {count(source.words, 'word')}, {count(source.chunks, 'passage')}, kept in this chat "
               "only (not saved).")
    if pasted.question is None:
        cl.user_session.set("pasted", source)
        await cl.Message(content=f"{summary} Ask your question about it next.", actions=[save]).send()
        return source, None
    await cl.Message(content=f"{summary} Answering: {md.plain(pasted.question)}", actions=[save]).send()
    return source, pasted.question


@cl.action_callback("save_paste")
async def save_paste(action: cl.Action) -> None:
    """Store pasted text in the corpus, on the user's request."""
    data = str(action.payload.get("text", "")).encode("utf-8")
    try:
        outcome = await services().retriever.add_upload("pasted-text.md", data)
    except RagError as exc:
        await cl.Message(content=f"⚠️ The pasted text was not saved: {md.plain(str(exc))}").send()
        return
    await action.remove()
    if outcome.status == "rejected":
        await cl.Message(content=f"⚠️ The pasted text was not saved: {md.plain(outcome.reason or '')}.").send()
    else:
        if outcome.status == "added":
            await _record_owner(outcome.source or "")
        where = md.code(outcome.source or "")
        verb = "Saved as" if outcome.status == "added" else "Already in the corpus as"
        await cl.Message(content=f"{verb} {where}: it is now part of the corpus for every chat.").send()


async def ingest(files: Sequence[object], message: cl.Message) -> frozenset[str]:
    """Store and index attached files before the message is answered; say what happened to each."""
    svc = services()
    limits = svc.library.limits
    if len(files) > limits.max_files:
        await cl.Message(content=f"⚠️ Too many files at once: {len(files)} (limit {limits.max_files}, "
                         "RAG_MAX_UPLOAD_FILES). None were added; attach fewer per message.").send()
        return frozenset()
    summary = cl.Message(content="", author="uploads")
    await summary.send()
    lines: list[str] = []
    stored: set[str] = set()
    for element in files:
        name = display_name(str(getattr(element, "name", "") or "file"))
        shown = md.plain(name)
        try:
            data = await asyncio.to_thread(svc.library.read_file, Path(str(getattr(element, "path"))))
            outcome = await svc.retriever.add_upload(name, data)
        except UnsupportedDocument as exc:
            lines.append(f"⚠️ **{shown}** was not added: {md.plain(exc.reason)}.")
            continue
        except RagError as exc:
            lines.append(f"⚠️ **{shown}** was not added: {md.plain(str(exc))}")
            continue
        if outcome.status == "added":
            pages = f" · {count(outcome.pages, 'page')}" if outcome.pages else ""
            step = cl.Step(name=f"upload · {name}{pages} · {count(outcome.chunks, 'chunk')} · parse {format_ms(outcome.parse_ms)} · "
                           f"index {format_ms(outcome.index_ms)}", type="tool", parent_id=summary.id, show_input=False)
            step.output = f"stored as {md.code(outcome.source or '')} ({format_size(outcome.size_bytes)})"
            await step.send()
            lines.append(f"✅ **{shown}** added as {md.code(outcome.source or '')}: {count(outcome.chunks, 'chunk')}{pages}.")
            stored.add(outcome.source or "")
            await _record_owner(outcome.source or "")
        elif outcome.status == "duplicate":
            lines.append(f"ℹ️ **{shown}** is already in the corpus ({md.plain(outcome.reason or '')}).")
            stored.add(outcome.source or "")
        else:
            lines.append(f"⚠️ **{shown}** was not added: {md.plain(outcome.reason or '')}.")
    summary.content = "\n".join(lines)
    await summary.update()
    return frozenset(s for s in stored if s)


async def _record_owner(source: str) -> None:
    """Remember who added an upload: they (and admins) may delete it."""
    history = services().history
    if history is not None and source:
        try:
            await history.record_upload(source, _person().identifier)
        except RagError as exc:
            log.warning("upload owner not recorded for %s: %s", source, exc)


async def _upload_owners() -> dict[str, str]:
    history = services().history
    return await history.upload_owners() if history is not None else {}


async def show_documents() -> None:
    """The /docs command: every document, with a delete action for uploads."""
    svc = services()
    person = await _verified_person()
    if person is None:
        return
    try:
        documents = await svc.retriever.documents()
        owners = await _upload_owners()
    except RagError as exc:
        await cl.Message(content=f"⚠️ {md.plain(str(exc))}").send()
        return
    uploads_prefix = f"{svc.settings.uploads_subdir}/"
    rows = ["| document | type | size | chunks | modified | status |", "|---|---|---:|---:|---|---|"]
    actions = []
    for doc in documents:
        status = "ok" if doc.status == "ok" else f"skipped: {doc.reason}"
        # Non-breaking spaces: "1.5 KB" and "2026-11-30 14:05" never wrap inside a narrow column.
        modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.modified)).replace(" ", NBSP) if doc.modified else ""
        size = format_size(doc.size_bytes).replace(" ", NBSP)
        rows.append(f"| {md.code(doc.source)} | {md.cell(doc.kind)} | {size} | {doc.chunks} | {modified} | {md.cell(status)} |")
        if doc.source.startswith(uploads_prefix) and may_delete(person, owners.get(doc.source)):
            actions.append(cl.Action(name="delete_document", payload={"source": doc.source}, icon="trash-2",
                                     label=f"Delete {readable_upload_name(doc.source)}", tooltip=f"Delete {doc.source}"))
    served = sum(d.chunks for d in documents)
    head = f"**{len(documents)} documents, {served} chunks** in {md.code(str(svc.settings.corpus_dir))}."
    if not any(d.source.startswith(uploads_prefix) for d in documents):
        head += " No uploads yet: attach PDF, DOCX, Markdown, text or HTML files with the paperclip."
    elif not person.is_admin:
        head += " You may delete the uploads you added."
    await cl.Message(content=head + "\n\n" + "\n".join(rows), actions=actions).send()


@cl.action_callback("delete_document")
async def delete_document(action: cl.Action) -> None:
    """Delete an upload after confirmation."""
    try:
        await _delete_after_confirmation(action)
    finally:
        # Chainlit's ask ends by announcing a running task (it expects to be inside a message handler);
        # action callbacks have no task of their own, so without this the chat stays busy: the stop
        # button shows and Enter sends nothing.
        await cl.context.emitter.task_end()


async def _delete_after_confirmation(action: cl.Action) -> None:
    source = str(action.payload.get("source", ""))
    person = await _verified_person()
    if person is None:
        return
    try:
        owner = (await _upload_owners()).get(source)
    except RagError as exc:
        await cl.Message(content=f"⚠️ {md.plain(str(exc))}").send()
        return
    if not may_delete(person, owner):  # checked here too: an action's payload comes from the browser
        await cl.Message(content=f"⚠️ {md.code(source)} was added by someone else; only they or an admin may delete it.").send()
        return
    choice = await cl.AskActionMessage(
        content=f"Delete {md.code(source)} and its chunks from the corpus? This cannot be undone.",
        actions=[
            cl.Action(name="confirm", payload={"value": "delete"}, label="Delete"),
            cl.Action(name="cancel", payload={"value": "keep"}, label="Keep"),
        ],
        timeout=300,
    ).send()
    if not choice or choice.get("payload", {}).get("value") != "delete":
        await cl.Message(content=f"Kept {md.code(source)}.").send()
        return
    try:
        await services().retriever.remove_document(source)
        if (history := services().history) is not None:
            await history.forget_upload(source)
    except RagError as exc:
        await cl.Message(content=f"⚠️ {md.plain(str(exc))}").send()
        return
    await action.remove()
    await cl.Message(content=f"Deleted {md.code(source)}; its chunks are gone from the index.").send()


class _AnswerView:
    """Renders one answer: a streamed message with its stage steps nested under it.

    Something truthful is on screen at every moment: while a model has produced no answer text, the
    bubble shows what it is doing and for how long (ticking each second), under the draft being checked
    if there is one; its first answer token replaces both. Step titles follow the model live.
    """

    TICK_S = 1.0

    def __init__(self, message: cl.Message) -> None:
        self.message = message
        # 40 ms at first; +10 ms per 2,000 characters shown (a 6,000-token answer: ~0.2 s between flushes).
        self.batcher = TokenBatcher(self._flush, interval=0.04, per_char=0.000005)
        self.model_steps: dict[str, cl.Step] = {}
        self.progress: dict[str, progress.Progress] = {}
        self.streamed = ""
        self.guard = md.StreamGuard()  # model text is untrusted: nothing in it may load while it streams
        self.kept = ""  # shown above the status line until answer text arrives: the draft being checked
        self.waiting: str | None = None  # the role whose first answer token the bubble is waiting for
        self.ticker: asyncio.Task[None] | None = None
        self.titled = 0.0  # when a step title was last updated while streaming
        self.bubble = asyncio.Lock()  # the ticker and the first answer token both rewrite the bubble

    async def _flush(self, text: str) -> None:
        await self.message.stream_token(text)

    async def step(self, name: str, output: str = "", type: TrueStepType = "tool", icon: str | None = None) -> cl.Step:
        step = cl.Step(name=name, type=type, parent_id=self.message.id, show_input=False, icon=icon)
        step.output = output
        await step.send()
        return step

    async def on(self, event: object) -> None:
        if isinstance(event, Retrieved):
            await self.step(f"retrieve · support {event.result.signals.support:.0%} · {format_ms(event.ms)}",
                            _retrieval_summary(event), type="retrieval", icon="search")
        elif isinstance(event, StageFinished):
            await self.step(f"{event.name} · {format_ms(event.ms)}", md.plain(event.detail), icon=STAGE_ICONS.get(event.name, "timer"))
        elif isinstance(event, ModelStarted):
            await self._start_model(event)
        elif isinstance(event, (TokenDelta, ReasoningDelta)):
            await self._text(event)
        elif isinstance(event, ModelFinished):  # reasoning is not streamed into the answer: its step shows it
            self._stop_waiting(event.role)
            await self._model_finished(event.role, event.generation, event.cost_usd)
        elif isinstance(event, ModelFailed):
            self._stop_waiting(event.role)
            await self._model_failed(event)
            await self._clear_stream()
        elif isinstance(event, EscalationDecided):
            await self._escalation(event)
        elif isinstance(event, Answer):
            await self._answer(event)

    async def _start_model(self, event: ModelStarted) -> None:
        now = time.perf_counter()
        self.progress[event.role] = progress.begin(event.alias, now)
        self.model_steps[event.role] = await self.step(
            progress.live_title(self.progress[event.role], now), f"{md.code(event.model_id)} at {md.code(event.endpoint)}",
            type="llm", icon="bot")
        await self._begin_waiting(event.role)

    async def _begin_waiting(self, role: str) -> None:
        """Until this model's first answer token, the bubble says what it is doing."""
        self.waiting = role
        await self._show_status()
        if self.ticker is None:
            self.ticker = asyncio.create_task(self._tick())

    async def _track(self, event: TokenDelta | ReasoningDelta) -> None:
        """Count the piece of text; the step title follows, a few updates a second."""
        now = time.perf_counter()
        before = self.progress.get(event.role)
        if before is not None:
            self.progress[event.role] = progress.advance(before, event, now)
            if before.first_text is None or now - self.titled > 0.5:
                await self._retitle(event.role, now)

    async def _text(self, event: TokenDelta | ReasoningDelta) -> None:
        await self._track(event)
        if isinstance(event, TokenDelta):
            if self.waiting == event.role:
                async with self.bubble:
                    self._stop_waiting(event.role)
                    self.message.content = ""  # the first answer token replaces the draft and the status line
            self.streamed += event.text
            self.batcher.add(self.guard.feed(event.text))

    async def _retitle(self, role: str, now: float) -> None:
        step, state = self.model_steps.get(role), self.progress.get(role)
        if step is not None and state is not None:
            self.titled = now
            step.name = progress.live_title(state, now)
            await step.update()

    async def _show_status(self) -> None:
        """The bubble while no answer text has arrived: the kept draft, then what the model is doing."""
        async with self.bubble:
            state = self.progress.get(self.waiting or "")
            if state is None:
                return
            line = f"*⏳ {md.plain(progress.status_line(state, time.perf_counter()))}*"
            self.message.content = f"{self.kept}\n\n{line}" if self.kept else line
            await self.message.update()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.TICK_S)
            if self.waiting is not None:
                await self._show_status()
                await self._retitle(self.waiting, time.perf_counter())

    def _stop_waiting(self, role: str) -> None:
        if self.waiting == role:
            self.waiting = None
            self.kept = ""

    async def _stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            await asyncio.gather(self.ticker, return_exceptions=True)
            self.ticker = None

    async def _model_failed(self, event: ModelFailed) -> None:
        step = self.model_steps.get(event.role)
        if step is not None:
            step.name = f"{event.alias} · failed"
            step.output = md.plain(event.message)
            await step.update()

    async def _model_finished(self, role: str, gen: Generation, cost: float) -> None:
        step = self.model_steps.get(role)
        if step is None:
            return
        estimated = " (estimated)" if gen.usage_estimated else ""
        step.name = progress.final_title(gen)
        details = [
            f"model {md.code(gen.model_id)} at {md.code(gen.endpoint)}",
            f"time to first token {format_ms(gen.first_token_ms)}, generation {format_ms(gen.generation_ms)}, "
            f"{gen.completion_tokens} completion tokens{estimated}, {gen.prompt_tokens} prompt tokens, "
            f"decode rate {progress.format_rate(progress.rate(gen))}"
            + ("" if progress.rate(gen) is not None else
               f" (shown from {progress.MIN_RATE_TOKENS} tokens over {progress.MIN_RATE_MS / 1000:.1f} s)"),
            f"estimated cost ${cost:.6f} (hypothetical cloud prices)",
        ]
        if gen.mean_logprob is not None:
            details.append(f"mean token logprob {gen.mean_logprob:.2f}")
        if gen.reasoning:
            details.append(f"\n**Reasoning** ({gen.reasoning_format or 'separate'}, not part of the answer):\n\n{md.safe_answer(gen.reasoning)}")
        step.output = "\n".join(details)
        await step.update()

    async def _clear_stream(self) -> None:
        """Remove streamed text from the answer (a failed draft; it stays in its step)."""
        self.batcher.discard()
        await self.batcher.close()
        if self.streamed:
            self.streamed = ""
            self.message.content = ""
            await self.message.update()

    async def _escalation(self, event: EscalationDecided) -> None:
        reasons = "; ".join(event.reasons)
        if event.escalate and event.applied:
            await self.batcher.close()
            draft_step = self.model_steps.get("draft")
            if draft_step is not None and self.streamed:  # the replaced draft stays, collapsed, in its step
                draft_step.output += f"\n\n**Draft** (replaced by {event.target}'s answer):\n\n{md.safe_answer(self.streamed.strip())}"
                await draft_step.update()
            if self.streamed.strip():  # ... and in the bubble, marked, until the large model's answer starts
                self.kept = (f"{md.safe_answer(self.streamed.strip())}\n\n*↑ draft by "
                             f"{md.plain(draft_step.name.split(' · ')[0] if draft_step else 'the small model')}, "
                             f"being checked by {md.plain(event.target)}: {md.plain(reasons)}*")
                self.message.content = self.kept
                await self.message.update()
            self.streamed = ""
            self.guard = md.StreamGuard()
            await self.step(_escalation_name(event), "\n".join(f"- {md.plain(r)}" for r in event.reasons)
                            + f"\n\ndecided in {format_ms(event.ms)}", icon="arrow-up-right")
        elif event.escalate:
            await self.step("escalation · not applied", f"The policy would escalate ({md.plain(reasons)}), but this "
                            "mode or setup does not allow it.", icon="circle-slash")
        else:
            await self.step(f"escalation · not needed · {format_ms(event.ms)}",
                            "The draft passed every check of the escalation policy.", icon="check")

    async def _answer(self, result: Answer) -> None:
        await self._stop_ticker()
        await self.batcher.close()
        anchor = f"source-{self.message.id}"
        lines = [md.link_citations(md.safe_answer(result.text), len(result.sources), anchor)]
        if not result.grounded and result.runs:  # a model answered an off-topic question from general knowledge
            lines.insert(0, "**Not from your documents** (general knowledge):\n")
        if result.note:
            lines.append(f"\n> ℹ️ {md.plain(result.note)}")
        footer = f"{result.model}"
        if result.runs or result.model not in ("extractive", "off-topic"):
            usage = f"{result.prompt_tokens} + {result.completion_tokens} tokens" + (" (estimated)" if result.usage_estimated else "")
            footer += f" · {result.mode} mode · {usage} · ${result.cost_usd:.6f} (hypothetical)"
            if result.escalated:
                footer += " · escalated"
        footer += f" · {format_ms(result.timings_ms.get('total', 0.0))} total"
        lines.append(f"\n*{footer}*")
        self.message.content = "\n".join(lines)
        self.message.metadata = answer_metadata(result.mode, result.model)  # groups its 👍/👎 in /stats
        self.message.elements = _elements(_sources_element(result.sources, result.cited, anchor),
                                          *_pdf_pages(result.sources, result.cited)) if result.sources else []
        await self.message.update()

    async def stopped(self) -> None:
        await self._stop_ticker()
        await self.batcher.close()
        self.message.content = (md.safe_answer(self.streamed) + "\n\n*(stopped)*").strip()
        await self.message.update()

    async def failed(self, text: str) -> None:
        await self._stop_ticker()
        await self.batcher.close()
        self.message.content = f"⚠️ {md.plain(text)}"
        await self.message.update()


STAGE_ICONS = {"build prompt": "file-text", "extract": "quote", "off topic": "circle-slash"}


class _CompareView(_AnswerView):
    """Renders a side-by-side comparison: one custom element with two columns, updated a few times a second."""

    def __init__(self, message: cl.Message) -> None:
        super().__init__(message)
        self.columns: compare_columns.Columns = {}
        self.element = cl.CustomElement(name="Compare", props={"columns": [], "sources": 0}, display="inline")
        # Each element update writes a file and re-renders the element: 4 per second is smooth enough.
        self.batcher = TokenBatcher(self._refresh, interval=0.25)
        self.shown = False

    async def _refresh(self, _: str = "") -> None:
        self.element.props = {**self.element.props, "columns": compare_columns.props(self.columns)}
        if not self.shown:
            self.shown = True
            self.message.content = "**Side by side**: phi-4-mini and gpt-oss-20b on the same question and sources."
            self.message.elements = _elements(self.element)
            await self.message.update()
        else:
            await self.element.update()

    async def _begin_waiting(self, role: str) -> None:
        """Each column shows its own status; the bubble holds the columns, not a status line."""

    async def on(self, event: object) -> None:
        if isinstance(event, Retrieved):
            self.element.props["sources"] = len(event.result.passages)
        if isinstance(event, (ModelStarted, TokenDelta, ReasoningDelta, ModelFinished, ModelFailed)):
            self.columns = compare_columns.advance(self.columns, event)
        if isinstance(event, ModelStarted):
            await self._start_model(event)
            await self._refresh()
        elif isinstance(event, (TokenDelta, ReasoningDelta)):
            await self._track(event)
            self.batcher.add(event.text)
        elif isinstance(event, ModelFinished):
            await self._model_finished(event.role, event.generation, event.cost_usd)
            await self._refresh()
        elif isinstance(event, ModelFailed):
            await self._model_failed(event)
        elif isinstance(event, Comparison):
            await self._comparison(event)
        else:
            await super().on(event)

    async def _comparison(self, result: Comparison) -> None:
        await self.batcher.close()
        self.columns = compare_columns.finished(result)
        self.element.props = {"columns": compare_columns.props(self.columns), "sources": len(result.sources)}
        lines = ["**Side by side**: " + " vs ".join(f"{c.alias}" for c in result.columns) + ", same question and sources."]
        total_cost = sum(c.cost_usd for c in result.columns)
        lines.append(f"\n*compare mode · both models · ${total_cost:.6f} (hypothetical) · {format_ms(result.timings_ms.get('total', 0.0))} total*")
        self.message.content = "\n".join(lines)
        self.message.metadata = answer_metadata("compare", " vs ".join(c.alias for c in result.columns))
        cited = tuple(sorted({n for c in result.columns for n in c.cited}))
        sources = [_sources_element(result.sources, cited, f"source-{self.message.id}")] if result.sources else []
        self.message.elements = _elements(self.element, *sources)
        await self.message.update()

    async def stopped(self) -> None:
        await self.batcher.close()
        self.message.content = (self.message.content or "") + "\n\n*(stopped)*"
        await self.message.update()


def _elements(*elements: cl.Element) -> list[Any]:
    """Elements for `Message.elements` (typed there with an unbound TypeVar that no list satisfies)."""
    return list(elements)


def _escalation_name(event: EscalationDecided) -> str:
    """'escalate → gpt-oss-20b: draft too short (+1 more)': short, the first reason's kind; all are inside."""
    if not event.reasons:
        return f"escalate → {event.target}"
    first = event.reasons[0].split(" (")[0].split(":")[0]
    more = f" (+{len(event.reasons) - 1} more)" if len(event.reasons) > 1 else ""
    return f"escalate → {event.target}: {first}{more}"


def _retrieval_summary(event: Retrieved) -> str:
    s = event.result.signals
    lines = [
        f"query: {md.code(repr(event.query))}",
        f"support {s.support:.0%} (estimated chance the documents answer this question)",
        f"top score {s.top_score:.2f} ({s.normalized_top:.0%} of the highest possible), margin {s.margin:.2f}, "
        f"coverage {s.coverage:.0%} (idf-weighted {s.weighted_coverage:.0%}) of {s.query_terms} terms",
    ]
    lines += [f"{p.rank}. {md.code(p.chunk.location)} · score {p.score:.2f}" for p in event.result.passages]
    return "\n".join(lines)


def _sources_element(sources: tuple[SourceRef, ...], cited: tuple[int, ...], anchor: str) -> cl.CustomElement:
    """The sources under an answer: each opens to its passage, rendered, marked inside the text around it.

    `anchor` prefixes each source's element id, which the answer's [n] links point at.
    """
    index = services().retriever.index
    items = []
    for ref in sources:
        chunk = ref.passage.chunk
        before, after = index.context(chunk)
        items.append({
            "number": ref.number, "location": chunk.location, "chunk": chunk.index, "page": chunk.page,
            "span": [chunk.start, chunk.end], "score": round(ref.passage.score, 2), "cited": ref.number in cited,
            "text": md.safe_answer(chunk.text), "before": md.safe_answer(before), "after": md.safe_answer(after),
        })
    return cl.CustomElement(name="Sources", display="inline", props={"anchor": anchor, "sources": items})


def _pdf_pages(sources: tuple[SourceRef, ...], cited: tuple[int, ...]) -> list[cl.Pdf]:
    """Chainlit's PDF viewer, open at the page, for each cited PDF source (one per document and page)."""
    root = services().settings.corpus_dir
    viewers: dict[tuple[str, int], cl.Pdf] = {}
    for ref in sources:
        chunk = ref.passage.chunk
        if ref.number in cited and chunk.page and chunk.source.lower().endswith(".pdf") and (root / chunk.source).is_file():
            viewers.setdefault((chunk.source, chunk.page), cl.Pdf(
                name=f"[{ref.number}] {PurePosixPath(chunk.source).name}, page {chunk.page}",
                path=str(root / chunk.source), page=chunk.page, display="inline"))
    return list(viewers.values())
