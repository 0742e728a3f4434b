"""Chainlit handlers only: translate pipeline events into messages, steps and elements.

All logic lives in `rag/`; this module reads the settings once, builds the services at start-up, and turns
each `rag.types` event into what the chat shows. Errors become one readable line here, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

import chainlit as cl
from chainlit.input_widget import Select, Slider

from rag.batching import TokenBatcher
from rag.config import Settings, load_settings
from rag.discovery import HOW_TO_CONNECT, Resolution
from rag.errors import ConfigError, RagError
from rag.pipeline import AnswerOptions
from rag.prompt import Turn
from rag.session import MODES, SessionStats, apply_chat_settings
from rag.uploads import display_name, remove_temporary_files
from rag.runtime import Services, build_services, upload_limits
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

try:
    SETTINGS: Settings = load_settings()
except ConfigError as exc:  # the one place start-up fails: say which variable, then stop
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2) from None

_services: Services | None = None


def services() -> Services:
    """The app's shared services (built at start-up)."""
    global _services
    if _services is None:
        own_port = int(os.environ.get("CHAINLIT_PORT", "8000"))
        _services = build_services(SETTINGS, own_port=own_port)
    return _services


@cl.on_app_startup
async def startup() -> None:
    """Remove upload leftovers of a crash, then index the corpus once, off the event loop."""
    removed = await asyncio.to_thread(remove_temporary_files, SETTINGS.corpus_dir)
    if removed:
        log.warning("removed %d unfinished upload(s) left by an interrupted run", removed)
    try:
        await services().retriever.refresh()
    except RagError as exc:
        log.error("corpus not indexed at start-up: %s", exc)


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
    cl.user_session.set("history", [])
    cl.user_session.set("stats", SessionStats())
    svc = services()
    cl.user_session.set("options", svc.options)
    cl.user_session.set("compare", False)
    await cl.ChatSettings(_settings_widgets(svc.options)).send()
    try:
        documents = await svc.retriever.documents()
        resolution = await svc.directory.resolve()
    except RagError as exc:
        await cl.Message(content=f"⚠️ {exc}").send()
        return
    served = sum(1 for d in documents if d.status == "ok")
    skipped = len(documents) - served
    corpus = f"{served} documents in `{SETTINGS.corpus_dir}`" + (f" ({skipped} skipped: `/docs` says why)" if skipped else "")
    await cl.Message(content=f"{_models_notice(resolution)}\n\nAnswering from {corpus}.", author="system").send()


def _settings_widgets(options: AnswerOptions) -> list[object]:
    policy = options.policy
    return [
        Select(id="mode", label="Mode", items={label: value for value, label in MODES.items()}, initial_value=options.mode,
               description="Which model answers; Side by side runs both on the same sources."),
        Slider(id="temperature", label="Temperature", initial=options.temperature, min=0, max=2, step=0.1),
        Slider(id="top_k", label="Passages per answer (top-k)", initial=options.top_k, min=1, max=20, step=1),
        Slider(id="small_max_tokens", label="phi-4-mini max tokens", initial=options.small_max_tokens, min=64, max=4096, step=64),
        Slider(id="large_max_tokens", label="gpt-oss-20b max tokens (it reasons first: leave room)",
               initial=options.large_max_tokens, min=256, max=8192, step=256),
        Slider(id="min_answer_tokens", label="Escalate drafts shorter than (tokens)", initial=policy.min_answer_tokens,
               min=0, max=100, step=1),
        Slider(id="min_coverage", label="Escalate when retrieval coverage is below", initial=policy.min_coverage,
               min=0, max=1, step=0.05),
        Slider(id="skip_draft_coverage", label="Skip the draft when coverage is below", initial=policy.skip_draft_coverage,
               min=0, max=1, step=0.05),
    ]


@cl.on_settings_update
async def settings_changed(values: dict[str, object]) -> None:
    """Apply to this session's next answers only."""
    options, compare = apply_chat_settings(services().options, values)
    cl.user_session.set("options", options)
    cl.user_session.set("compare", compare)


def _session_options() -> tuple[AnswerOptions, bool]:
    options = cl.user_session.get("options") or services().options
    return options, bool(cl.user_session.get("compare"))


def _session_stats() -> SessionStats:
    stats = cl.user_session.get("stats")
    if stats is None:
        stats = SessionStats()
        cl.user_session.set("stats", stats)
    return stats


async def update_chart(repost: bool = False) -> None:
    """Create the session's latency chart after its first answer; afterwards update it in place."""
    props = _session_stats().chart_props()
    chart = cl.user_session.get("chart")
    if chart is None or repost:
        chart = cl.CustomElement(name="LatencyChart", props=props, display="inline")
        cl.user_session.set("chart", chart)
        await cl.Message(content="**Latency this session**, updated after each answer (`/stats` for the numbers).",
                         elements=[chart], author="stats").send()
        return
    chart.props = props
    await chart.update()


def _models_notice(resolution: Resolution) -> str:
    found = [r for r in (resolution.small, resolution.large) if r is not None]
    if not found:
        problems = "\n".join(f"- {p}" for p in resolution.problems)
        return (
            "**No model server found**, so answers are extracts of the documents (clearly labelled).\n\n"
            f"{problems}\n\n{HOW_TO_CONNECT}"
        )
    lines = [f"- **{r.alias}** → `{r.model_id}` on {r.server.name} ({r.server.base_url})" for r in found]
    missing = [p for p in resolution.problems]
    if missing:
        lines += [f"- ⚠️ {p}" for p in missing]
    return "Connected models:\n" + "\n".join(lines)


@cl.on_message
async def answer(message: cl.Message) -> None:
    """Commands, then attached files (indexed before answering), then the pipeline."""
    text = message.content.strip()
    if text == "/docs":
        await show_documents()
        return
    if text == "/stats":
        await cl.Message(content=_session_stats().render_markdown(), author="stats").send()
        return
    if text == "/chart":
        await update_chart(repost=True)
        return
    focus: frozenset[str] | None = None
    files = [e for e in (message.elements or []) if getattr(e, "path", None)]
    if files:
        focus = await ingest(files, message)
        if not text:
            return
    history: list[Turn] = cl.user_session.get("history") or []
    options, compare = _session_options()
    reply = cl.Message(content="")
    await reply.send()
    view: _AnswerView = _CompareView(reply) if compare else _AnswerView(reply)
    run = services().pipeline.compare if compare else services().pipeline.run
    try:
        async for event in run(message.content, history, options, focus or None):
            # Bookkeeping before rendering: once the answer shows, the user may send the next message.
            if isinstance(event, Answer):
                remember(history, Turn(message.content, event.text))
                _session_stats().record_answer(event)
            elif isinstance(event, Comparison):
                both = "\n\n".join(f"{c.alias}: {c.text}" for c in event.columns if c.text and not c.error)
                remember(history, Turn(message.content, both))
                _session_stats().record_comparison(event)
            await view.on(event)
            if isinstance(event, (Answer, Comparison)):
                await update_chart()
    except asyncio.CancelledError:
        await view.stopped()
        raise
    except RagError as exc:
        await view.failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - the chat must keep serving; the log keeps the traceback
        log.exception("answering failed")
        await view.failed(f"Something went wrong while answering ({type(exc).__name__}: {exc}).")


def remember(history: list[Turn], turn: Turn) -> None:
    """Add a turn to this session's history (bounded: the prompt only uses the last few anyway)."""
    history.append(turn)
    cl.user_session.set("history", history[-20:])


async def ingest(files: list[object], message: cl.Message) -> frozenset[str]:
    """Store and index attached files before the message is answered; say what happened to each."""
    svc = services()
    limits = upload_limits(SETTINGS)
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
        try:
            data = await asyncio.to_thread(Path(str(getattr(element, "path"))).read_bytes)
            outcome = await svc.retriever.add_upload(name, data, SETTINGS.uploads_dir, limits)
        except (OSError, RagError) as exc:
            lines.append(f"⚠️ **{name}** was not added: {exc}")
            continue
        if outcome.status == "added":
            pages = f" · {_count(outcome.pages, 'page')}" if outcome.pages else ""
            step = cl.Step(name=f"upload · {name}{pages} · {_count(outcome.chunks, 'chunk')} · parse {_ms(outcome.parse_ms)} · "
                           f"index {_ms(outcome.index_ms)}", type="tool", parent_id=summary.id, show_input=False)
            step.output = f"stored as `{outcome.source}` ({outcome.size_bytes / 1024:.0f} KB)"
            await step.send()
            lines.append(f"✅ **{name}** added as `{outcome.source}`: {_count(outcome.chunks, 'chunk')}{pages}.")
            stored.add(outcome.source or "")
        elif outcome.status == "duplicate":
            lines.append(f"ℹ️ **{name}** is already in the corpus ({outcome.reason}).")
            stored.add(outcome.source or "")
        else:
            lines.append(f"⚠️ **{name}** was not added: {outcome.reason}.")
    summary.content = "\n".join(lines)
    await summary.update()
    return frozenset(s for s in stored if s)


async def show_documents() -> None:
    """The /docs command: every document, with a delete action for uploads."""
    svc = services()
    try:
        documents = await svc.retriever.documents()
    except RagError as exc:
        await cl.Message(content=f"⚠️ {exc}").send()
        return
    uploads_prefix = f"{SETTINGS.uploads_subdir}/"
    rows = ["| document | type | size | chunks | added | status |", "|---|---|---:|---:|---|---|"]
    actions = []
    for doc in documents:
        status = "ok" if doc.status == "ok" else f"skipped: {doc.reason}"
        added = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.modified)) if doc.modified else ""
        rows.append(f"| `{doc.source}` | {doc.kind} | {doc.size_bytes / 1024:.0f} KB | {doc.chunks} | {added} | {_cell(status)} |")
        if doc.source.startswith(uploads_prefix):
            actions.append(cl.Action(name="delete_document", payload={"source": doc.source},
                                     label=f"Delete {doc.source.removeprefix(uploads_prefix)}", icon="trash-2"))
    served = sum(d.chunks for d in documents)
    head = f"**{len(documents)} documents, {served} chunks** in `{SETTINGS.corpus_dir}`."
    if not actions:
        head += " No uploads yet: attach PDF, DOCX, Markdown, text or HTML files with the paperclip."
    await cl.Message(content=head + "\n\n" + "\n".join(rows), actions=actions).send()


@cl.action_callback("delete_document")
async def delete_document(action: cl.Action) -> None:
    """Delete an upload after confirmation."""
    source = str(action.payload.get("source", ""))
    choice = await cl.AskActionMessage(
        content=f"Delete `{source}` and its chunks from the corpus? This cannot be undone.",
        actions=[
            cl.Action(name="confirm", payload={"value": "delete"}, label="Delete"),
            cl.Action(name="cancel", payload={"value": "keep"}, label="Keep"),
        ],
        timeout=300,
    ).send()
    if not choice or choice.get("payload", {}).get("value") != "delete":
        await cl.Message(content=f"Kept `{source}`.").send()
        return
    try:
        await services().retriever.remove_document(source, SETTINGS.uploads_dir)
    except RagError as exc:
        await cl.Message(content=f"⚠️ {exc}").send()
        return
    await action.remove()
    await cl.Message(content=f"Deleted `{source}`; its chunks are gone from the index.").send()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class _AnswerView:
    """Renders one answer: a streamed message with its stage steps nested under it."""

    def __init__(self, message: cl.Message) -> None:
        self.message = message
        # 40 ms at first; +10 ms per 2,000 characters shown (a 6,000-token answer: ~0.2 s between flushes).
        self.batcher = TokenBatcher(self._flush, interval=0.04, per_char=0.000005)
        self.model_steps: dict[str, cl.Step] = {}
        self.streamed = ""

    async def _flush(self, text: str) -> None:
        await self.message.stream_token(text)

    async def step(self, name: str, output: str = "", type: str = "tool") -> cl.Step:
        step = cl.Step(name=name, type=type, parent_id=self.message.id, show_input=False)
        step.output = output
        await step.send()
        return step

    async def on(self, event: object) -> None:
        if isinstance(event, Retrieved):
            await self.step(f"retrieve · {_ms(event.ms)}", _retrieval_summary(event), type="retrieval")
        elif isinstance(event, StageFinished):
            await self.step(f"{event.name} · {_ms(event.ms)}", event.detail)
        elif isinstance(event, ModelStarted):
            await self._start_model(event)
        elif isinstance(event, TokenDelta):
            self.streamed += event.text
            self.batcher.add(event.text)
        elif isinstance(event, ModelFinished):  # reasoning deltas are not streamed: the step shows it at the end
            await self._model_finished(event.role, event.generation, event.cost_usd)
        elif isinstance(event, ModelFailed):
            await self._model_failed(event)
            await self._clear_stream()
        elif isinstance(event, EscalationDecided):
            await self._escalation(event)
        elif isinstance(event, Answer):
            await self._answer(event)

    async def _start_model(self, event: ModelStarted) -> None:
        self.model_steps[event.role] = await self.step(
            f"{event.alias} · waiting for first token", f"`{event.model_id}` at {event.endpoint}", type="llm"
        )

    async def _model_failed(self, event: ModelFailed) -> None:
        step = self.model_steps.get(event.role)
        if step is not None:
            step.name = f"{event.alias} · failed"
            step.output = event.message
            await step.update()

    async def _model_finished(self, role: str, gen: Generation, cost: float) -> None:
        step = self.model_steps.get(role)
        if step is None:
            return
        estimated = " (estimated)" if gen.usage_estimated else ""
        step.name = (
            f"{gen.alias} · first token {_ms(gen.first_token_ms)} · {gen.tokens_per_s:.0f} tok/s"
        )
        details = [
            f"model `{gen.model_id}` at {gen.endpoint}",
            f"time to first token {_ms(gen.first_token_ms)}, generation {_ms(gen.generation_ms)}, "
            f"{gen.completion_tokens} completion tokens{estimated}, {gen.prompt_tokens} prompt tokens",
            f"estimated cost ${cost:.6f} (hypothetical cloud prices)",
        ]
        if gen.mean_logprob is not None:
            details.append(f"mean token logprob {gen.mean_logprob:.2f}")
        if gen.reasoning:
            details.append(f"\n**Reasoning** ({gen.reasoning_format or 'separate'}, not part of the answer):\n\n{gen.reasoning}")
        step.output = "\n".join(details)
        await step.update()

    async def _clear_stream(self) -> None:
        """Remove streamed text from the answer (a failed or replaced draft; it stays in its step)."""
        self.batcher.discard()
        await self.batcher.close()
        if self.streamed:
            self.streamed = ""
            self.message.content = ""
            await self.message.update()

    async def _escalation(self, event: EscalationDecided) -> None:
        reasons = "; ".join(event.reasons)
        if event.escalate and event.applied:
            draft_step = self.model_steps.get("draft")
            if draft_step is not None and self.streamed:  # keep the replaced draft, collapsed in its step
                draft_step.output += f"\n\n**Draft** (replaced by {event.target}'s answer):\n\n{self.streamed.strip()}"
                await draft_step.update()
            await self._clear_stream()
            await self.step(_escalation_name(event), "\n".join(f"- {r}" for r in event.reasons) + f"\n\ndecided in {_ms(event.ms)}")
        elif event.escalate:
            await self.step(f"escalation not applied ({reasons})"[:180], "The policy would escalate, but this mode or setup does not allow it.")
        else:
            await self.step(f"escalation · not needed · {_ms(event.ms)}", "The draft passed every check of the escalation policy.")

    async def _answer(self, result: Answer) -> None:
        await self.batcher.close()
        lines = [result.text]
        if result.note:
            lines.append(f"\n> ℹ️ {result.note}")
        footer = f"{result.model}"
        if result.model != "extractive":
            usage = f"{result.prompt_tokens} + {result.completion_tokens} tokens" + (" (estimated)" if result.usage_estimated else "")
            footer += f" · {result.mode} mode · {usage} · ${result.cost_usd:.6f} (hypothetical)"
            if result.escalated:
                footer += " · escalated"
        footer += f" · {_ms(result.timings_ms.get('total', 0.0))} total"
        lines.append(f"\n*{footer}*")
        self.message.content = "\n".join(lines)
        self.message.elements = [_sources_element(result.sources, result.cited)] if result.sources else []
        await self.message.update()

    async def stopped(self) -> None:
        await self.batcher.close()
        self.message.content = (self.streamed + "\n\n*(stopped)*").strip()
        await self.message.update()

    async def failed(self, text: str) -> None:
        await self.batcher.close()
        self.message.content = f"⚠️ {text}"
        await self.message.update()


class _CompareView(_AnswerView):
    """Renders a side-by-side comparison: one custom element with two columns, updated a few times a second."""

    def __init__(self, message: cl.Message) -> None:
        super().__init__(message)
        self.columns: dict[str, dict[str, object]] = {}
        self.element = cl.CustomElement(name="Compare", props={"columns": [], "sources": 0}, display="inline")
        # Each element update writes a file and re-renders the element: 4 per second is smooth enough.
        self.batcher = TokenBatcher(self._refresh, interval=0.25)
        self.shown = False

    async def _refresh(self, _: str = "") -> None:
        self.element.props = {**self.element.props, "columns": list(self.columns.values())}
        if not self.shown:
            self.shown = True
            self.message.content = "**Side by side**: phi-4-mini and gpt-oss-20b on the same question and sources."
            self.message.elements = [self.element]
            await self.message.update()
        else:
            await self.element.update()

    async def on(self, event: object) -> None:
        if isinstance(event, Retrieved):
            self.element.props["sources"] = len(event.result.passages)
        if isinstance(event, ModelStarted):
            self.columns[event.role] = {"alias": event.alias, "model_id": event.model_id, "status": "waiting",
                                        "text": "", "reasoning": ""}
            await self._start_model(event)
            await self._refresh()
        elif isinstance(event, (TokenDelta, ReasoningDelta)):
            column = self.columns.get(event.role)
            if column is not None:
                key = "text" if isinstance(event, TokenDelta) else "reasoning"
                column[key] = str(column[key]) + event.text
                column["status"] = "streaming"
                self.batcher.add(event.text)
        elif isinstance(event, ModelFinished):
            await self._model_finished(event.role, event.generation, event.cost_usd)
            column = self.columns.get(event.role)
            if column is not None:  # the faster model's numbers show while the other still streams
                column.update(_column_metrics(event.generation, event.cost_usd))
                await self._refresh()
        elif isinstance(event, ModelFailed):
            column = self.columns.get(event.role)
            if column is not None:
                column.update(status="error", error=event.message)
            await self._model_failed(event)
        elif isinstance(event, Comparison):
            await self._comparison(event)
        else:
            await super().on(event)

    async def _comparison(self, result: Comparison) -> None:
        await self.batcher.close()
        columns = []
        for column in result.columns:
            shown: dict[str, object] = {"alias": column.alias, "model_id": column.model_id, "status": "error",
                                        "text": column.text, "reasoning": column.reasoning, "error": column.error,
                                        "cited": list(column.cited)}
            if column.generation is not None:
                shown.update(_column_metrics(column.generation, column.cost_usd))
            columns.append(shown)
        self.columns = {str(i): c for i, c in enumerate(columns)}
        self.element.props = {"columns": columns, "sources": len(result.sources)}
        lines = ["**Side by side**: " + " vs ".join(f"{c.alias}" for c in result.columns) + ", same question and sources."]
        total_cost = sum(c.cost_usd for c in result.columns)
        lines.append(f"\n*compare mode · both models · ${total_cost:.6f} (hypothetical) · {_ms(result.timings_ms.get('total', 0.0))} total*")
        self.message.content = "\n".join(lines)
        cited = tuple(sorted({n for c in result.columns for n in c.cited}))
        self.message.elements = [self.element] + ([_sources_element(result.sources, cited)] if result.sources else [])
        await self.message.update()

    async def stopped(self) -> None:
        await self.batcher.close()
        self.message.content = (self.message.content or "") + "\n\n*(stopped)*"
        await self.message.update()


def _column_metrics(g: Generation, cost: float) -> dict[str, object]:
    """A finished model's numbers for its column of the Compare element."""
    return {"status": "done", "text": g.text, "reasoning": g.reasoning, "ttft_ms": g.first_token_ms,
            "total_ms": g.last_token_ms, "tokens": g.completion_tokens, "tok_s": g.tokens_per_s, "cost": cost,
            "estimated": g.usage_estimated}


def _escalation_name(event: EscalationDecided) -> str:
    """'escalate → gpt-oss-20b: draft too short (+1 more)': the first reason names the step, all are inside."""
    if not event.reasons:
        return f"escalate → {event.target}"
    first = event.reasons[0].split(" (")[0] if len(event.reasons[0]) > 60 else event.reasons[0]
    more = f" (+{len(event.reasons) - 1} more)" if len(event.reasons) > 1 else ""
    return f"escalate → {event.target}: {first}{more}"


def _retrieval_summary(event: Retrieved) -> str:
    s = event.result.signals
    lines = [
        f"query: {event.query!r}",
        f"top score {s.top_score:.2f}, margin {s.margin:.2f}, coverage {s.coverage:.0%} "
        f"(idf-weighted {s.weighted_coverage:.0%}) of {s.query_terms} terms",
    ]
    lines += [f"{p.rank}. `{p.chunk.location}` · score {p.score:.2f}" for p in event.result.passages]
    return "\n".join(lines)


def _sources_element(sources: tuple[SourceRef, ...], cited: tuple[int, ...]) -> cl.CustomElement:
    """The sources under an answer, each expandable to its passage (rendered as plain text)."""
    return cl.CustomElement(name="Sources", display="inline", props={"sources": [
        {"number": ref.number, "location": ref.passage.chunk.location, "chunk": ref.passage.chunk.index,
         "span": [ref.passage.chunk.start, ref.passage.chunk.end], "score": round(ref.passage.score, 2),
         "cited": ref.number in cited, "text": ref.passage.chunk.text}
        for ref in sources
    ]})


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"
