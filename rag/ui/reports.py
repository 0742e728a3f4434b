"""What the chat reports about itself: the latency chart under the latest answer, /stats and /export."""

from __future__ import annotations

import chainlit as cl

from rag import markdown as md
from rag.chat import export as exporting
from rag.chat.feedback import thumbs_markdown
from rag.chat.history import now
from rag.errors import RagError
from rag.runtime import Services
from rag.ui.elements import LATENCY_CHART as LATENCY_CHART_ELEMENT
from rag.ui.state import LATENCY_CHART, conversation, person, session_stats
from rag.ui.views import elements
from rag.units import count


async def update_chart(under: str | None = None) -> None:
    """The session's latency chart, at the end of the latest answer's latency step (`under`), or in a
    message of its own (the /chart command).

    One chart per chat, moved rather than re-sent: an element re-sent under a new step is one update
    for the page, where removing a message and sending a new one were three, each re-rendering the whole
    conversation (issue 25). It sits in a step, not in a message after the answer, so the answer stays
    the turn's last message and carries Copy and the rating (issue 26).
    """
    props = session_stats().chart_props()
    if under is None:
        chart = cl.CustomElement(name=LATENCY_CHART_ELEMENT, props=props, display="inline")
        await cl.Message(content="", elements=elements(chart), author="stats").send()
        return
    chart = cl.user_session.get(LATENCY_CHART)
    if not isinstance(chart, cl.CustomElement):
        chart = cl.CustomElement(name=LATENCY_CHART_ELEMENT, props=props, display="inline")
        cl.user_session.set(LATENCY_CHART, chart)
    chart.props = props
    await chart.send(for_id=under)


async def show_stats(services: Services) -> None:
    """The /stats command: this session's numbers, then the thumbs-up share per mode and model."""
    parts = [session_stats().render_markdown()]
    history = services.history
    if history is not None:
        try:
            parts.append(thumbs_markdown(await history.feedback(person().identifier)))
        except RagError as exc:
            parts.append(f"Feedback could not be read: {md.plain(str(exc))}")
    await cl.Message(content="\n\n".join(parts), author="stats").send()


async def export_conversation(services: Services) -> None:
    """The /export command: this conversation as Markdown and JSON files to download."""
    current = conversation(services.options)
    if not current.exchanges:
        await cl.Message(content="Nothing to export yet: ask a question first.").send()
        return
    title = current.exchanges[0].question
    meta = {"exported": now(), "user": person().identifier}
    stem = exporting.file_stem(title)
    files = [
        cl.File(name=f"{stem}.md", content=exporting.to_markdown(current, title, meta).encode("utf-8"), mime="text/markdown", display="inline"),
        cl.File(name=f"{stem}.json", content=exporting.to_json(current, title, meta).encode("utf-8"), mime="application/json", display="inline"),
    ]
    await cl.Message(content=f"This conversation, {count(len(current.exchanges), 'exchange')}: Markdown to read, JSON "
                     "to process (`rag export` does the same from the command line).", elements=elements(*files)).send()
