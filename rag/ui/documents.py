"""The documents in the chat: attached files stored and indexed, the /docs listing, deleting an upload."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import chainlit as cl

from rag import markdown as md
from rag.chat.auth import may_delete
from rag.documents.library import display_name, readable_upload_name
from rag.errors import RagError, UnsupportedDocument
from rag.runtime import Services
from rag.ui.state import person, verified_person
from rag.units import count, format_ms, format_size

log = logging.getLogger(__name__)
NBSP = "\u00a0"


# A question sent with files none of which could be added is about them ("summarize the attached report"):
# answered from the other documents it would mislead.
NOTHING_ADDED = ("**Not answered:** none of the attached files could be added (each one's reason is above), and the "
                 "question was about them. Attach a file that can be read, or send the question again without "
                 "attachments to search all your documents.")


async def ingest(svc: Services, files: Sequence[object]) -> frozenset[str]:
    """Store and index attached files before the message is answered; say what happened to each.

    Returns the stored sources (new or already there), which the answer then draws on.
    """
    limits = svc.library.limits
    if len(files) > limits.max_files:
        await cl.Message(content=f"Too many files at once: {len(files)} (limit {limits.max_files}, "
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
            lines.append(f"**{shown}** was not added: {md.plain(exc.reason)}.")
            continue
        except RagError as exc:
            lines.append(f"**{shown}** was not added: {md.plain(str(exc))}")
            continue
        if outcome.status == "added":
            pages = f" · {count(outcome.pages, 'page')}" if outcome.pages else ""
            step = cl.Step(name=f"upload · {name}{pages} · {count(outcome.chunks, 'chunk')} · parse {format_ms(outcome.parse_ms)} · "
                           f"index {format_ms(outcome.index_ms)}", type="tool", parent_id=summary.id, show_input=False)
            step.output = f"stored as {md.code(outcome.source or '')} ({format_size(outcome.size_bytes)})"
            await step.send()
            lines.append(f"**{shown}** added as {md.code(outcome.source or '')}: {count(outcome.chunks, 'chunk')}{pages}."
                         + (f" Kept in the folder, not searchable yet: {md.plain(outcome.pending)}; it is indexed as soon "
                            "as search is back." if outcome.pending else ""))
            stored.add(outcome.source or "")
            await record_owner(svc, outcome.source or "")
        elif outcome.status == "duplicate":
            lines.append(f"**{shown}** is already in the corpus ({md.plain(outcome.reason or '')}).")
            stored.add(outcome.source or "")
        else:
            lines.append(f"**{shown}** was not added: {md.plain(outcome.reason or '')}.")
    summary.content = "\n".join(lines)
    await summary.update()
    return frozenset(s for s in stored if s)


async def record_owner(svc: Services, source: str) -> None:
    """Remember who added an upload: they (and admins) may delete it."""
    history = svc.history
    if history is not None and source:
        try:
            await history.record_upload(source, person().identifier)
        except RagError as exc:
            log.warning("upload owner not recorded for %s: %s", source, exc)


async def _upload_owners(svc: Services) -> dict[str, str]:
    history = svc.history
    return await history.upload_owners() if history is not None else {}


async def show_documents(svc: Services) -> None:
    """The /docs command: every document, with a delete action for uploads."""
    reader = await verified_person(svc)
    if reader is None:
        return
    try:
        documents = await svc.retriever.documents()
        owners = await _upload_owners(svc)
    except RagError as exc:
        await cl.Message(content=f"**Problem:** {md.plain(str(exc))}").send()
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
        if doc.source.startswith(uploads_prefix) and may_delete(reader, owners.get(doc.source)):
            actions.append(cl.Action(name="delete_document", payload={"source": doc.source}, icon="trash-2",
                                     label=f"Delete {readable_upload_name(doc.source)}", tooltip=f"Delete {doc.source}"))
    served = sum(d.chunks for d in documents)
    head = f"**{len(documents)} documents, {served} chunks** in {md.code(str(svc.settings.corpus_dir))}."
    if not any(d.source.startswith(uploads_prefix) for d in documents):
        head += " No uploads yet: attach PDF, DOCX, Markdown, text or HTML files with the paperclip."
    elif not reader.is_admin:
        head += " You may delete the uploads you added."
    await cl.Message(content=head + "\n\n" + "\n".join(rows), actions=actions).send()


async def delete_after_confirmation(svc: Services, action: cl.Action) -> None:
    """Delete the upload an action names, if this user may and confirms; say what happened."""
    source = str(action.payload.get("source", ""))
    reader = await verified_person(svc)
    if reader is None:
        return
    try:
        owner = (await _upload_owners(svc)).get(source)
    except RagError as exc:
        await cl.Message(content=f"**Problem:** {md.plain(str(exc))}").send()
        return
    if not may_delete(reader, owner):  # checked here too: an action's payload comes from the browser
        await cl.Message(content=f"{md.code(source)} was added by someone else; only they or an admin may delete it.").send()
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
        await svc.retriever.remove_document(source)
        if (history := svc.history) is not None:
            await history.forget_upload(source)
    except RagError as exc:
        await cl.Message(content=f"**Problem:** {md.plain(str(exc))}").send()
        return
    await action.remove()
    await cl.Message(content=f"Deleted {md.code(source)}; its chunks are gone from the index.").send()
