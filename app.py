"""Chainlit handlers only: each reads the chat's input and hands it to `rag.ui`, which turns pipeline events
into messages, steps and elements.

This module reads the settings once and builds the services at start-up, then passes them to `rag.ui`
(which never imports the app). Errors become one readable line in the chat, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import chainlit as cl
from chainlit.types import ThreadDict
from starlette.datastructures import Headers

from rag.answer.options import ChatChoices
from rag.chat import conversation as chat
from rag.chat.auth import LOCAL_USER, auth_secret, check_exposure, sign_in
from rag.chat.history import History, database_url, migrate
from rag.chat.paste import SOURCE as PASTED_SOURCE, too_long
from rag.chat.session import SessionStats
from rag.config import Settings, load_settings
from rag.documents.watching import FolderWatcher
from rag.errors import RagError
from rag.runtime import Services, build_services, keep_calibrated, preload
from rag.ui import documents, greeting, pasting, reports, state
from rag.ui.answering import ready_for_next, respond
from rag.ui.datalayer import HistoryLayer
from rag.ui.elements import COMPARE
from rag.ui.server import (
    corpus_files,
    live_feeds,
    local_page_only,
    others_conversations_are_not_found,
    own_files_folder,
    quiet_stop,
    readable_sign_in_errors,
    same_origin_websocket,
)
from rag.ui.views import forget_ready_columns

log = logging.getLogger("app")

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
    same_origin_websocket()
    own_files_folder()
    local_page_only()
    others_conversations_are_not_found()
    quiet_stop()
    readable_sign_in_errors()
    live_feeds()
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
    # Support calibrated on this corpus, in the background (questions meanwhile use the stored or shipped one).
    svc.calibrating = asyncio.create_task(keep_calibrated(settings, svc.retriever, settings.watch_interval_s))
    # What the first question would load lazily (tokenizer, search path, model clients): the app is ready
    # when it is loaded, and the first question costs no more than the next (issue 25).
    await preload(svc)
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
    cl.data_layer(lambda: HistoryLayer(url, settings.corpus_dir))
    corpus_files(settings.corpus_dir)  # the cited PDF pages of a reopened conversation
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
    state.keep(chat.start(svc.options))
    cl.user_session.set("stats", SessionStats())
    await greeting.show_controls(ChatChoices.of(svc.options))
    await greeting.greet(svc)
    await ready_for_next(svc)


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    """A stored conversation reopened (from the sidebar, after a reload, or on another app process): its
    messages, steps and elements are shown by Chainlit; this restores what the app remembers, so a
    follow-up is retrieved and answered with the earlier turns, under the chat settings it had."""
    conversation = await state.restore(services(), thread)
    await greeting.show_controls(conversation.choices)
    # Not readied here: the page replaces its elements with the thread's after this handler.
    forget_ready_columns()


@cl.on_chat_end
async def end() -> None:
    """Stop watching for a model server for a chat that is gone."""
    watcher = cl.user_session.get("watcher")
    if isinstance(watcher, asyncio.Task):
        watcher.cancel()


@cl.on_settings_update
async def settings_changed(values: dict[str, object]) -> None:
    """Apply to this session's next answers only."""
    options = services().options
    before = state.conversation(options)
    after = chat.choose(before, values)
    state.keep(after)
    state.save_conversation(options)
    if (changed := after.choices.changes(before.choices)) is not None:  # said, so the user knows it took
        said = cl.Message(content=changed, author="settings")
        await said.send()
        if after.side_by_side and not before.side_by_side:  # e.g. in a reopened chat that never had it
            await greeting.preload_elements(said, (COMPARE,))
    await ready_for_next(services())


@cl.on_message
async def answer(message: cl.Message) -> None:
    """Commands, then attached files (indexed before answering), then the pipeline."""
    svc = services()
    if (refusal := too_long(len(message.content), svc.settings.max_file_mb)) is not None:
        await cl.Message(content=f"**Not sent:** {refusal}").send()
        return
    text = message.content.strip()
    command = greeting.command_in(message, text)
    if command == "docs":
        await documents.show_documents(svc)
        return
    if command == "stats":
        await reports.show_stats(svc)
        return
    if command == "export":
        await reports.export_conversation(svc)
        return
    if await state.verified_person(svc) is None:  # an account removed since sign-in: the reply said so
        return
    if command == "chart":
        await reports.update_chart()
        return
    pipeline = svc.pipeline
    files = [e for e in (message.elements or []) if getattr(e, "path", None)]
    # Pasted text grounds the answer, unless files are attached: then they do (and a kept paste waits).
    pasted = await pasting.pasted(svc, text, command == "paste") if not files else None
    if pasted is not None:
        source, question = pasted
        if source is None or question is None:
            return  # stored for the next question, or refused: the reply said which
        pipeline, text = pipeline.with_searcher(source), question
    # The user chose what grounds the answer (pasted text, attached files): their support on so small a
    # corpus means nothing, so the policy does not judge retrieval (issue 24: a note pasted and asked
    # about word for word showed support 12% and skipped the draft).
    focus: frozenset[str] | None = frozenset({PASTED_SOURCE}) if pasted is not None else None
    if files:
        focus = await documents.ingest(svc, files)
        if not text:
            return
        if not focus:  # asked about the files, none of which could be added: not answered from the others
            await cl.Message(content=documents.NOTHING_ADDED).send()
            return
    await respond(svc, pipeline, text, focus)


@cl.action_callback("save_paste")
async def save_paste(action: cl.Action) -> None:
    """Store pasted text in the corpus, on the user's request."""
    await pasting.save_pasted(services(), action)


@cl.action_callback("delete_document")
async def delete_document(action: cl.Action) -> None:
    """Delete an upload after confirmation."""
    try:
        await documents.delete_after_confirmation(services(), action)
    finally:
        # Chainlit's ask ends by announcing a running task (it expects to be inside a message handler);
        # action callbacks have no task of their own, so without this the chat stays busy: the stop
        # button shows and Enter sends nothing.
        await cl.context.emitter.task_end()
