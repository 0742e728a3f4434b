"""What a chat shows before any question: the greeting (which models answer, from which documents), the
composer's commands and the chat-settings panel; and the notice when a model server turns up later."""

from __future__ import annotations

import asyncio

import chainlit as cl
from chainlit.input_widget import InputWidget, Select, Slider
from chainlit.types import CommandDict

from rag import markdown as md
from rag.answer.options import MODES, ChatChoices
from rag.config import BOUNDS
from rag.errors import RagError, SearchUnavailable
from rag.llm.discovery import HOW_TO_CONNECT, Resolution
from rag.runtime import Services
from rag.ui.elements import COMPARE, SOURCES

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


def command_in(message: cl.Message, text: str) -> str | None:
    """The command a message gives: picked from the menu, or typed as its first word (`/docs`)."""
    first = text.split(maxsplit=1)[0] if text else ""
    return message.command or (first[1:] if first in {f"/{c['id']}" for c in COMMANDS} else None)


async def show_controls(choices: ChatChoices) -> None:
    """The composer's commands, and the settings panel showing `choices`."""
    await cl.context.emitter.set_commands(COMMANDS)
    await cl.ChatSettings(settings_widgets(choices)).send()


def _slider(name: str, label: str, initial: float) -> Slider:
    """A chat-settings slider over the setting's own range (rag.config.BOUNDS)."""
    bound = BOUNDS[name]
    return Slider(id=name, label=label, initial=initial, min=bound.low, max=bound.high, step=bound.step)


def settings_widgets(choices: ChatChoices) -> list[InputWidget]:
    """The chat-settings panel: the mode and the per-session limits, starting at `choices`."""
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


async def notice(content: str) -> cl.Message:
    """A status line from the app itself. A system message, so the starter questions stay on screen (the
    welcome screen hides as soon as the chat holds a user or assistant message)."""
    message = cl.Message(content=content, author="system", type="system_message")
    await message.send()
    return message


# The answers' custom elements, built by the page while it shows the greeting. Otherwise the first answer
# fetched and compiled each element's code, and fetched and built its component, while its text was due:
# side by side's first answer showed text ~250 ms after bare Chainlit's, the next ones ~20 ms (issue 25).
PRELOADED = (SOURCES, COMPARE)


async def preload_elements(message: cl.Message, names: tuple[str, ...] = PRELOADED) -> None:
    """Elements that show nothing (`props.preload`, see public/elements/lib/), not stored, for `message`:
    a reopened chat's own elements build the components it shows. Side by side chosen later (in a
    reopened chat with no side-by-side answer, say) builds its component with the message that says so."""
    for name in names:
        await cl.CustomElement(name=name, props={"preload": True}, display="inline").send(
            for_id=message.id, persist=False)


# What the app is for and where things are, before the technical part (issue 26: the greeting listed
# endpoints and a folder and never said what to do).
GUIDE = (
    "**Ask about your documents.** Answers are written from them, cite them as [1], [2] (click one to read "
    "the passage) and say which model wrote them. Add documents with the clip (PDF, Word, Markdown, text) or "
    "paste a text with `/paste`; type `/` for the other commands (`/docs`, `/stats`, `/chart`, `/export`). "
    "The gear holds the mode (one model, automatic escalation to the large one, or both side by side) and "
    "the thresholds."
)


async def greet(services: Services) -> None:
    """Say which models answer (or how to connect one) and from which documents; with no model server
    found, watch for one in the background (the task is kept in the session as `watcher`)."""
    search = ""
    try:
        try:
            documents = await services.retriever.documents()
        except SearchUnavailable as exc:  # the folder is fine: list it, and say what is down and where
            documents, search = services.library.documents(), f"\n\n**Search is down:** {md.plain(search_down(exc))}"
        resolution = await services.directory.resolve()
    except RagError as exc:
        await notice(f"**Problem:** {md.plain(str(exc))}")
        return
    served = sum(1 for d in documents if d.status == "ok")
    skipped = len(documents) - served
    corpus = f"{served} documents in {md.code(str(services.settings.corpus_dir))}" + (f" ({skipped} skipped: `/docs` says why)" if skipped else "")
    await preload_elements(await notice(f"{GUIDE}\n\n{models_notice(resolution)}\n\nAnswering from {corpus}.{search}"))
    if resolution.small is None and resolution.large is None:
        cl.user_session.set("watcher", asyncio.create_task(announce_when_a_server_appears(services)))


async def announce_when_a_server_appears(services: Services, every_s: float = 4.0, for_s: float = 3600.0) -> None:
    """Say in the chat when a model server started after the greeting has been found."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_s
    while loop.time() < deadline:
        await asyncio.sleep(every_s)
        resolution = await services.directory.resolve()
        if resolution.small is not None or resolution.large is not None:
            await notice("A model server is up. " + models_notice(resolution))
            return


def search_down(exc: SearchUnavailable) -> str:
    """What a user is told when the search server cannot be reached (RAG_ENGINE=opensearch)."""
    return (f"Search is unreachable at {exc.where} ({exc.reason}). Questions are answered again as soon as it is "
            "back; documents you upload meanwhile are kept and indexed then.")


def models_notice(resolution: Resolution) -> str:
    """Which model answers as which alias, where; or, with none found, where the app looked and how to connect."""
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
    lines += [f"- {md.plain(p)}" for p in resolution.problems]
    return "Connected models:\n" + "\n".join(lines)
