"""Pasted reference text: it grounds the answer to one question, kept in the chat (never written) unless the
user saves it to the corpus."""

from __future__ import annotations

import chainlit as cl

from rag import markdown as md
from rag.chat.paste import PastedSource, split_pasted
from rag.errors import RagError, UnsupportedDocument
from rag.runtime import Services
from rag.ui.documents import record_owner
from rag.units import count


async def pasted(svc: Services, text: str, command: bool) -> tuple[PastedSource | None, str | None] | None:
    """Pasted reference text in this message (or kept from /paste for this question), or None.

    Returns (source, question): the question is None when the text came without one; it is then kept for
    the next question in this chat. The text is never written anywhere unless the user saves it.
    """
    body = text.removeprefix("/paste").strip() if command else text
    found = split_pasted(body, always=command)
    kept = cl.user_session.get("pasted")
    if found is None:
        if isinstance(kept, PastedSource) and not command:
            cl.user_session.set("pasted", None)  # kept text grounds this one question
            return kept, text
        if command:
            cl.user_session.set("pasted", None)
            await cl.Message(content="Paste reference text after `/paste` (and, if you like, your question as its "
                             "last paragraph); it grounds the answer without being saved.").send()
            return None, None
        return None
    try:
        source = await PastedSource.build(found.text, svc.library.corpus, svc.retriever.analyzer, svc.settings.engine,
                                          svc.settings.bm25_k1, svc.settings.bm25_b)
    except UnsupportedDocument as exc:
        await cl.Message(content=f"The pasted text cannot be used: {md.plain(exc.reason)}.").send()
        return None, None
    save = cl.Action(name="save_paste", payload={"text": found.text}, label="Save it to the corpus", icon="save",
                     tooltip="Store the pasted text as a document in the uploads folder")
    summary = (f"**Pasted text**: {count(source.words, 'word')}, {count(source.chunks, 'passage')}, kept in this chat "
               "only (not saved).")
    if found.question is None:
        cl.user_session.set("pasted", source)
        await cl.Message(content=f"{summary} Ask your question about it next.", actions=[save]).send()
        return source, None
    await cl.Message(content=f"{summary} Answering: {md.plain(found.question)}", actions=[save]).send()
    return source, found.question


async def save_pasted(svc: Services, action: cl.Action) -> None:
    """Store pasted text in the corpus, on the user's request (the action under the paste's summary)."""
    data = str(action.payload.get("text", "")).encode("utf-8")
    try:
        outcome = await svc.retriever.add_upload("pasted-text.md", data)
    except RagError as exc:
        await cl.Message(content=f"The pasted text was not saved: {md.plain(str(exc))}").send()
        return
    await action.remove()
    if outcome.status == "rejected":
        await cl.Message(content=f"The pasted text was not saved: {md.plain(outcome.reason or '')}.").send()
    else:
        if outcome.status == "added":
            await record_owner(svc, outcome.source or "")
        where = md.code(outcome.source or "")
        verb = "Saved as" if outcome.status == "added" else "Already in the corpus as"
        await cl.Message(content=f"{verb} {where}: it is now part of the corpus for every chat.").send()
