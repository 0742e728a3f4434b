"""This chat's state in Chainlit's user session: the conversation, its statistics, who it belongs to, and
what is stored of it with the conversation's history."""

from __future__ import annotations

import logging
import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.types import ThreadDict

from rag import markdown as md
from rag.answer.options import AnswerOptions
from rag.chat import conversation as chat
from rag.chat.auth import LOCAL_USER, Person, local_person
from rag.chat.conversation import Conversation
from rag.chat.history import json_value
from rag.chat.session import SessionStats
from rag.errors import RagError
from rag.runtime import Services
from rag.ui.datalayer import HistoryLayer
from rag.ui.elements import LATENCY_CHART as LATENCY_CHART_ELEMENT

log = logging.getLogger(__name__)


# The session keys of what the next answer changes in the earlier ones: the latest answer's latency step
# (open until a newer answer is below it) and the chat's one latency chart (moved into the newest).
OPEN_LATENCY_STEP = "open_latency_step"
LATENCY_CHART = "latency_chart"


def keep(conversation: Conversation) -> None:
    """Make `conversation` this chat's state."""
    cl.user_session.set("conversation", conversation)


def conversation(options: AnswerOptions) -> Conversation:
    """This chat's conversation; a new one under the app's `options` if it has none."""
    current = cl.user_session.get("conversation")
    if not isinstance(current, Conversation):
        current = chat.start(options)
        keep(current)
    return current


def session_stats() -> SessionStats:
    """This chat's statistics (/stats and the chart)."""
    stats = cl.user_session.get("stats")
    if not isinstance(stats, SessionStats):
        stats = SessionStats()
        cl.user_session.set("stats", stats)
    return stats


def save_conversation(options: AnswerOptions) -> None:
    """Store the conversation, its choices and stats with the thread, through the background writer:
    history never delays an answer, and later states always land after earlier ones."""
    layer = get_data_layer()
    thread_id = cl.context.session.thread_id
    if not isinstance(layer, HistoryLayer) or not thread_id:
        return
    data = {"rag_conversation": chat.to_dict(conversation(options)), "rag_stats": session_stats().to_dict()}
    layer.save_conversation(thread_id, data)


async def restore(services: Services, thread: ThreadDict) -> Conversation:
    """Make a stored conversation this chat's state again (its memory, choices and stats); returns it."""
    history = services.history
    try:
        metadata = await history.conversation(thread["id"]) if history is not None else {}
    except RagError as exc:
        log.warning("conversation %s could not be read: %s", thread["id"], exc)
        metadata = {}
    metadata = metadata or json_value(thread.get("metadata"))  # stored by an older version
    stored = metadata.get("rag_conversation")
    restored = chat.from_dict(stored) if isinstance(stored, dict) else chat.start(services.options)
    keep(restored)
    cl.user_session.set("stats", SessionStats.from_dict(metadata.get("rag_stats")))
    reattach(thread)
    return restored


def reattach(thread: ThreadDict) -> None:
    """In a reopened conversation, the latest answer's open latency step and the chart in it: the next
    answer closes the one and moves the other, as it would have without the reload."""
    open_steps = [s for s in thread.get("steps") or [] if s.get("type") == "tool" and s.get("icon") == "timer"
                  and str(s.get("name", "")).startswith("latency") and s.get("defaultOpen") and not s.get("autoCollapse")]
    if open_steps:
        last = open_steps[-1]
        step = cl.Step(id=last["id"], name=last["name"], type="tool", parent_id=last.get("parentId"),
                       show_input=False, icon="timer", default_open=True)
        # Closing it rewrites the whole row: with a new createdAt the group would sort after its stage steps
        # and Chainlit, which builds the tree in that order, would drop them on the next reopen.
        step.created_at = last.get("createdAt") or step.created_at
        step.start, step.end = last.get("start"), last.get("end")
        step.input, step.output = last.get("input") or "", last.get("output") or ""
        cl.user_session.set(OPEN_LATENCY_STEP, step)
    charts = [e for e in thread.get("elements") or [] if e.get("type") == "custom" and e.get("name") == LATENCY_CHART_ELEMENT]
    if charts:
        last_chart = charts[-1]
        props = last_chart.get("props")
        cl.user_session.set(LATENCY_CHART, cl.CustomElement(
            id=last_chart["id"], name=LATENCY_CHART_ELEMENT, props=props if isinstance(props, dict) else {}, display="inline"))


def person() -> Person:
    """Who this chat belongs to: the signed-in user, or the single local user when sign-in is off."""
    user = cl.user_session.get("user")
    identifier = getattr(user, "identifier", None)
    if not identifier or identifier == LOCAL_USER:
        return local_person()
    role = (getattr(user, "metadata", None) or {}).get("role")
    return Person(identifier, "admin" if role == "admin" else "user")


async def verified_person(services: Services) -> Person | None:
    """The user with their role as stored now (a sign-in token keeps the role it was issued with), or None,
    said in the chat, when their account has been removed since they signed in."""
    current = person()
    if services.history is None or services.settings.auth != "password" or current.identifier == LOCAL_USER:
        return current
    try:
        record = await services.history.user_record(current.identifier)
    except RagError as exc:
        await cl.Message(content=f"**Problem:** {md.plain(str(exc))}").send()
        return None
    if record is None:
        await cl.Message(content="Your account has been removed: sign out to sign in as another user.").send()
        return None
    return Person(current.identifier, record[1])
