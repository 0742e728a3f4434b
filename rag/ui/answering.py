"""One answer in the chat: the pipeline's event stream, remembered in the conversation and shown by a view."""

from __future__ import annotations

import asyncio
import logging

import chainlit as cl

from rag.answer.pipeline import Pipeline
from rag.chat import conversation as chat
from rag.chat.history import now
from rag.errors import RagError, SearchUnavailable
from rag.runtime import Services
from rag.types import Answer, Comparison
from rag.ui.greeting import search_down
from rag.ui.reports import update_chart
from rag.ui.state import conversation, keep, save_conversation, session_stats
from rag.ui.state import OPEN_LATENCY_STEP
from rag.ui.views import AnswerView, CompareView, collapse, ready_columns

log = logging.getLogger(__name__)


async def respond(services: Services, pipeline: Pipeline, text: str, focus: frozenset[str] | None) -> None:
    """Answer `text` in this chat's mode and settings, from `focus` (sources) when given.

    `pipeline` is the app's, or one searching pasted text. Failures end the answer with one readable
    line; the stop button cancels it, and what streamed stays, marked.
    """
    current = conversation(services.options)
    options = current.options(services.options)
    reply = cl.Message(content="")  # sent by the view, with its first text or once held updates are due
    view: AnswerView = CompareView(reply, services) if current.side_by_side else AnswerView(reply, services)
    run = pipeline.compare if current.side_by_side else pipeline.run
    answered = False
    try:
        async for event in run(text, current.turns(), options, focus or None):
            # Bookkeeping before rendering: once the answer shows, the user may send the next message.
            answered = answered or isinstance(event, (Answer, Comparison))
            if isinstance(event, Answer):
                keep(chat.remember_answer(conversation(services.options), text, event, now()))
                session_stats().record_answer(event)
            elif isinstance(event, Comparison):
                keep(chat.remember_comparison(conversation(services.options), text, event, now()))
                session_stats().record_comparison(event)
            await view.on(event)
            if isinstance(event, (Answer, Comparison)):
                if view.group is not None:
                    await update_chart(view.group.id)
                save_conversation(services.options)
    except asyncio.CancelledError:
        await view.stopped()
        # A stopped answer's question stays in the conversation, for the follow-up that usually comes next
        # ("shorter please"); an answer that had finished (a stop during bookkeeping) is already there.
        if not answered:
            keep(chat.remember_stopped(conversation(services.options), text, view.shown(), now()))
            save_conversation(services.options)
        raise
    except SearchUnavailable as exc:
        await view.failed(search_down(exc))
    except RagError as exc:
        await view.failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - the chat must keep serving; the log keeps the traceback
        log.exception("answering failed")
        await view.failed(f"Something went wrong while answering ({type(exc).__name__}: {exc}).")
    finally:
        view.close()
        # Only the latest answer keeps its stage steps open (see AnswerView); done after this answer, so
        # closing the previous one costs the next question nothing.
        if view.group is not None:
            previous = cl.user_session.get(OPEN_LATENCY_STEP)
            if isinstance(previous, cl.Step):
                await collapse(previous)
            cl.user_session.set(OPEN_LATENCY_STEP, view.group)
        await ready_for_next(services)  # while this answer is read


async def ready_for_next(services: Services) -> None:
    """What the chat's next answer needs on the page, sent while nobody waits: side by side's columns
    (see `ready_columns`). After each answer, and when a chat starts or changes its mode."""
    if conversation(services.options).side_by_side:
        await ready_columns()
