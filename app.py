"""Chainlit handlers only: turn retrieval results into chat messages and steps. All logic lives in rag/."""

from __future__ import annotations

import logging
import time

import chainlit as cl

from rag.config import Settings, load_settings
from rag.errors import RagError
from rag.retrieval import Retriever
from rag.runtime import build_retriever

log = logging.getLogger("app")

# Built once at start-up (a module of handlers is the app's edge: reading settings here is allowed).
SETTINGS: Settings = load_settings()
RETRIEVER: Retriever = build_retriever(SETTINGS)


@cl.on_chat_start
async def start() -> None:
    """Index the corpus (first chat only) and greet."""
    await RETRIEVER.refresh()
    documents = RETRIEVER.corpus.documents()
    served = sum(1 for d in documents if d.status == "ok")
    await cl.Message(
        content=f"Ask a question about the {served} documents in `{SETTINGS.corpus_dir}`. "
        "Answers currently show the retrieved passages."
    ).send()


@cl.on_message
async def answer(message: cl.Message) -> None:
    """Retrieve and show the best passages with their provenance."""
    started = time.perf_counter()
    try:
        result = await RETRIEVER.search(message.content, SETTINGS.top_k)
    except RagError as exc:
        await cl.Message(content=f"Retrieval failed: {exc}").send()
        return
    took = (time.perf_counter() - started) * 1000
    async with cl.Step(name=f"retrieve · {took:.0f} ms", type="retrieval") as step:
        step.output = f"{len(result.passages)} passages, coverage {result.signals.coverage:.0%}"
    if not result.passages:
        await cl.Message(content="No passage in the corpus matches this question.").send()
        return
    lines = [f"**[{p.rank}] {p.chunk.location}** (score {p.score:.2f})\n\n> {' '.join(p.chunk.text.split())[:600]}"
             for p in result.passages]
    await cl.Message(content="\n\n".join(lines)).send()
