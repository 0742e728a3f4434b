"""What the chat reports about itself: the latency chart under the latest answer, /stats and /export."""

from __future__ import annotations

import chainlit as cl

from rag import markdown as md
from rag.chat import export as exporting
from rag.chat.feedback import thumbs_markdown
from rag.chat.history import now
from rag.errors import RagError
from rag.runtime import Services
from rag.ui.state import conversation, person, session_stats
from rag.ui.views import elements
from rag.units import count


async def update_chart() -> None:
    """Show the session's latency chart below the latest answer, where the user is looking.

    The previous chart message is removed, so there is one chart, always at the bottom. With no model
    timings yet (every answer an extract), it says so instead of plotting an axis of zeros.
    """
    previous = cl.user_session.get("chart_message_id")  # an id, so it survives a resume
    if isinstance(previous, str) and previous:
        await cl.Message(content="", id=previous).remove()
    props = session_stats().chart_props()
    if not any(point["runs"] for point in props["points"]):
        message = cl.Message(content="**Latency this session**: nothing to plot yet. Answers so far came from the "
                             "documents (extracts), with no model timings; `/stats` has the numbers.", author="stats")
    else:
        chart = cl.CustomElement(name="LatencyChart", props=props, display="inline")
        message = cl.Message(content="**Latency this session**, redrawn after each answer (`/stats` for the numbers).",
                             elements=elements(chart), author="stats")
    await message.send()
    cl.user_session.set("chart_message_id", message.id)


async def show_stats(services: Services) -> None:
    """The /stats command: this session's numbers, then the thumbs-up share per mode and model."""
    parts = [session_stats().render_markdown()]
    history = services.history
    if history is not None:
        try:
            parts.append(thumbs_markdown(await history.feedback(person().identifier)))
        except RagError as exc:
            parts.append(f"⚠️ Feedback could not be read: {md.plain(str(exc))}")
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
