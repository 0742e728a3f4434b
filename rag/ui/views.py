"""The answer and comparison views: pipeline events (`rag.types`) turned into a streamed message, its
timed steps, and the sources, columns and PDF pages shown under it."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import chainlit as cl
from chainlit.step import TrueStepType
from chainlit.utils import utc_now

from rag import markdown as md
from rag.chat import columns as compare_columns
from rag.chat import progress
from rag.chat.batching import TokenBatcher
from rag.chat.feedback import answer_metadata
from rag.index.search import EARLIER_WEIGHT
from rag.runtime import Services
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
from rag.ui.elements import COMPARE, SOURCES
from rag.ui.live import FEEDS
from rag.units import format_ms


class AnswerView:
    """Renders one answer: a streamed message with its stage steps nested under it.

    Something truthful is on screen at every moment: while a model has produced no answer text, the
    bubble shows what it is doing and for how long (ticking each second), under the draft being checked
    if there is one; its first answer token replaces both. Step titles follow the model live.

    The stage steps sit in one "latency" step, open while it is the latest answer and titled with every
    stage's time when the answer ends; `collapse()` closes it once a newer answer has its own, and the
    session's latency chart moves into the newest. Chainlit's page re-renders every mounted step on every
    update of the chat, so steps left open in earlier answers made each answer slower than the one before
    (issue 25); a closed step's children are not mounted.

    For the same reason the first updates wait for the first answer text, or `HOLD_S`, whichever comes
    first: each update costs the page a render that grows with the conversation, and the five sent
    before a fast model's first token (the message, the steps, the status line) delayed its text by
    their renders. Held updates are sent right after the first text, with everything they showed.
    """

    TICK_S = 1.0
    HOLD_S = 0.3

    def __init__(self, message: cl.Message, services: Services) -> None:
        self.message = message
        self.services = services  # the index and corpus folder its sources are shown from
        # 40 ms at first; +10 ms per 2,000 characters shown (a 6,000-token answer: ~0.2 s between flushes).
        self.batcher = TokenBatcher(self._flush, interval=0.04, per_char=0.000005)
        self.model_steps: dict[str, cl.Step] = {}
        self.progress: dict[str, progress.Progress] = {}
        self.streamed = ""
        self.guard = md.StreamGuard()  # model text is untrusted: nothing in it may load while it streams
        self.kept = ""  # shown above the status line until answer text arrives: the draft being checked
        self.waiting: str | None = None  # the role whose first answer token the bubble is waiting for
        self.ticker: asyncio.Task[None] | None = None
        self.titled = 0.0  # when a step title was last updated while streaming
        self.bubble = asyncio.Lock()  # the ticker and the first answer token both rewrite the bubble
        self.group: cl.Step | None = None  # the step the stage steps are nested in, sent with the first one
        self.timings: list[str] = []  # each stage's time, for the group's title once the answer ends
        self.live = False  # False: steps and the bubble's status wait in `held` for `release()`
        self.bubble_sent = False  # the message is on the page (sent, or streamed into)
        self.held: list[cl.Step] = []
        self.sending = asyncio.Lock()  # a step is never sent before the step or message it is nested in
        self.holding = asyncio.get_running_loop().call_later(self.HOLD_S, self._release_soon)
        self.releasing: asyncio.Future[None] | None = None
        if not message.created_at:  # stamped now: it may first reach the page by its first streamed text
            message.created_at = utc_now()

    async def _flush(self, text: str) -> None:
        await self.message.stream_token(text)

    async def step(self, name: str, output: str = "", type: TrueStepType = "tool", icon: str | None = None) -> cl.Step:
        """A stage step nested under the answer's latency step, sent now (or held, see the class)."""
        if self.group is None:
            self.group = cl.Step(name="latency · answering…", type="tool", parent_id=self.message.id,
                                 show_input=False, icon="timer", default_open=True)
            await self._show(self.group)
        step = cl.Step(name=name, type=type, parent_id=self.group.id, show_input=False, icon=icon)
        step.output = output
        await self._show(step)
        return step

    async def _show(self, step: cl.Step) -> None:
        async with self.sending:
            if self.live:
                await step.send()
            else:
                self.held.append(step)

    def _release_soon(self) -> None:
        self.releasing = asyncio.ensure_future(self.release())

    async def release(self) -> None:
        """Send what was held, as it is now (titles and status current)."""
        async with self.sending:
            if self.live:
                return
            self.live = True
            self.holding.cancel()
            if not self.message.streaming and not self.bubble_sent:
                await self.message.send()  # the bubble with the status line, if a model is being waited for
                self.bubble_sent = True
            for step in self.held:
                await step.send()
            self.held.clear()

    async def close_group(self, ending: str | None = None) -> None:
        """Title the latency step with every stage's time (and how the answer ended, when not normally)."""
        if self.group is not None:
            self.group.name = " · ".join(["latency", *self.timings, *([ending] if ending else [])])
            await self.group.update()


    async def on(self, event: object) -> None:
        """Show one pipeline event."""
        if not isinstance(event, HOLDABLE):
            await self.release()  # the answer is ending or changing course: show everything now
        if isinstance(event, Retrieved):
            support = "your documents" if event.chosen else f"support {event.result.signals.support:.0%}"
            self.timings.append(f"retrieve {format_ms(event.ms)}")
            await self.step(f"retrieve · {support} · {format_ms(event.ms)}",
                            retrieval_summary(event), type="retrieval", icon="search")
        elif isinstance(event, StageFinished):
            self.timings.append(f"{event.name} {format_ms(event.ms)}")
            await self.step(f"{event.name} · {format_ms(event.ms)}", md.plain(event.detail), icon=STAGE_ICONS.get(event.name, "timer"))
        elif isinstance(event, ModelStarted):
            await self._start_model(event)
        elif isinstance(event, (TokenDelta, ReasoningDelta)):
            await self._text(event)
        elif isinstance(event, ModelFinished):  # reasoning is not streamed into the answer: its step shows it
            self._stop_waiting(event.role)
            await self._model_finished(event.role, event.generation, event.cost_usd)
        elif isinstance(event, ModelFailed):
            self._stop_waiting(event.role)
            await self._model_failed(event)
            await self._clear_stream()
        elif isinstance(event, EscalationDecided):
            await self._escalation(event)
        elif isinstance(event, Answer):
            await self._answer(event)

    async def _start_model(self, event: ModelStarted) -> None:
        now = time.perf_counter()
        self.progress[event.role] = progress.begin(event.alias, now)
        self.model_steps[event.role] = await self.step(
            progress.live_title(self.progress[event.role], now), f"{md.code(event.model_id)} at {md.code(event.endpoint)}",
            type="llm", icon="bot")
        await self._begin_waiting(event.role)

    async def _begin_waiting(self, role: str) -> None:
        """Until this model's first answer token, the bubble says what it is doing."""
        self.waiting = role
        await self._show_status()
        if self.ticker is None:
            self.ticker = asyncio.create_task(self._tick())

    async def _track(self, event: TokenDelta | ReasoningDelta) -> None:
        """Count the piece of text; the step title follows, a few updates a second."""
        now = time.perf_counter()
        before = self.progress.get(event.role)
        if before is not None:
            self.progress[event.role] = progress.advance(before, event, now)
            if before.first_text is None or now - self.titled > 0.5:
                await self._retitle(event.role, now)

    async def _text(self, event: TokenDelta | ReasoningDelta) -> None:
        # The answer text first, the step title after it: the text is what the user is waiting for.
        if isinstance(event, TokenDelta):
            if self.waiting == event.role:
                async with self.bubble:
                    self._stop_waiting(event.role)
                    self.message.content = ""  # the first answer token replaces the draft and the status line
            first = not self.streamed
            self.streamed += event.text
            self.batcher.add(self.guard.feed(event.text))
            if first:  # on screen now, not one flush interval later
                await self.batcher.drain()
        await self.release()
        await self._track(event)

    async def _retitle(self, role: str, now: float) -> None:
        step, state = self.model_steps.get(role), self.progress.get(role)
        if step is not None and state is not None:
            self.titled = now
            step.name = progress.live_title(state, now)
            if self.live:
                await step.update()

    async def _show_status(self) -> None:
        """The bubble while no answer text has arrived: the kept draft, then what the model is doing."""
        async with self.bubble:
            state = self.progress.get(self.waiting or "")
            if state is None:
                return
            line = f"*{md.plain(progress.status_line(state, time.perf_counter()))}*"
            self.message.content = f"{self.kept}\n\n{line}" if self.kept else line
            if self.live:
                await self.message.update()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.TICK_S)
            if self.waiting is not None:
                await self._show_status()
                await self._retitle(self.waiting, time.perf_counter())

    def _stop_waiting(self, role: str) -> None:
        if self.waiting == role:
            self.waiting = None
            self.kept = ""

    async def _stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            await asyncio.gather(self.ticker, return_exceptions=True)
            self.ticker = None

    async def _model_failed(self, event: ModelFailed) -> None:
        self.timings.append(f"{event.alias} failed")
        step = self.model_steps.get(event.role)
        if step is not None:
            step.name = f"{event.alias} · failed"
            step.output = md.plain(event.message)
            await step.update()

    async def _model_finished(self, role: str, gen: Generation, cost: float) -> None:
        self.timings.append(f"{gen.alias} first token {format_ms(gen.first_token_ms)}, done {format_ms(gen.last_token_ms)}")
        step = self.model_steps.get(role)
        if step is None:
            return
        estimated = " (estimated)" if gen.usage_estimated else ""
        step.name = progress.final_title(gen)
        details = [
            f"model {md.code(gen.model_id)} at {md.code(gen.endpoint)}",
            f"time to first token {format_ms(gen.first_token_ms)}, generation {format_ms(gen.generation_ms)}, "
            f"{gen.completion_tokens} completion tokens{estimated}, {gen.prompt_tokens} prompt tokens, "
            f"decode rate {progress.format_rate(progress.rate(gen))}"
            + ("" if progress.rate(gen) is not None else
               f" (shown from {progress.MIN_RATE_TOKENS} tokens over {progress.MIN_RATE_MS / 1000:.1f} s)"),
            f"estimated cost ${cost:.6f} (hypothetical cloud prices)",
        ]
        if gen.mean_logprob is not None:
            details.append(f"mean token logprob {gen.mean_logprob:.2f}")
        if gen.reasoning:
            details.append(f"\n**Reasoning** ({gen.reasoning_format or 'separate'}, not part of the answer):\n\n{md.safe_answer(gen.reasoning)}")
        step.output = "\n".join(details)
        await step.update()

    async def _clear_stream(self) -> None:
        """Remove streamed text from the answer (a failed draft; it stays in its step)."""
        self.batcher.discard()
        await self.batcher.close()
        if self.streamed:
            self.streamed = ""
            self.message.content = ""
            await self.message.update()

    async def _escalation(self, event: EscalationDecided) -> None:
        reasons = "; ".join(event.reasons)
        if event.escalate and event.applied:
            self.timings.append(f"escalated to {event.target}")
            await self.batcher.close()
            draft_step = self.model_steps.get("draft")
            if draft_step is not None and self.streamed:  # the replaced draft stays, collapsed, in its step
                draft_step.output += f"\n\n**Draft** (replaced by {event.target}'s answer):\n\n{md.safe_answer(self.streamed.strip())}"
                await draft_step.update()
            if self.streamed.strip():  # ... and in the bubble, marked, until the large model's answer starts
                self.kept = (f"{md.safe_answer(self.streamed.strip())}\n\n*↑ draft by "
                             f"{md.plain(draft_step.name.split(' · ')[0] if draft_step else 'the small model')}, "
                             f"being checked by {md.plain(event.target)}: {md.plain(reasons)}*")
                self.message.content = self.kept
                await self.message.update()
            self.streamed = ""
            self.guard = md.StreamGuard()
            await self.step(escalation_name(event), "\n".join(f"- {md.plain(r)}" for r in event.reasons)
                            + f"\n\ndecided in {format_ms(event.ms)}", icon="arrow-up-right")
        elif event.escalate:
            await self.step("escalation · not applied", f"The policy would escalate ({md.plain(reasons)}), but this "
                            "mode or setup does not allow it.", icon="circle-slash")
        else:
            await self.step(f"escalation · not needed · {format_ms(event.ms)}",
                            "The draft passed every check of the escalation policy.", icon="check")

    async def _answer(self, result: Answer) -> None:
        await self._stop_ticker()
        await self.batcher.close()
        anchor = f"source-{self.message.id}"
        lines = [md.link_citations(md.safe_answer(result.text), len(result.sources), anchor)]
        if not result.grounded and result.runs:  # a model answered an off-topic question from general knowledge
            lines.insert(0, "**Not from your documents** (general knowledge):\n")
        if result.note:
            lines.append(f"\n> **Note:** {md.plain(result.note)}")
        footer = f"{result.model}"
        if result.runs or result.model not in ("extractive", "off-topic"):
            usage = f"{result.prompt_tokens} + {result.completion_tokens} tokens" + (" (estimated)" if result.usage_estimated else "")
            footer += f" · {result.mode} mode · {usage} · ${result.cost_usd:.6f} (hypothetical)"
            if result.escalated:
                footer += " · escalated"
        footer += f" · {format_ms(result.timings_ms.get('total', 0.0))} total"
        lines.append(f"\n*{footer}*")
        self.message.content = "\n".join(lines)
        self.message.metadata = answer_metadata(result.mode, result.model)  # groups its ratings in /stats
        pdfs = pdf_pages(result.sources, result.cited, self.services) if result.sources else []
        for pdf in pdfs:  # one at a time: sent together (as `update` does) they arrive as their files are copied
            await pdf.send(for_id=self.message.id)
        self.message.elements = elements(
            sources_element(result.sources, result.cited, anchor, self.services), *pdfs) if result.sources else []
        await self.message.update()  # sends them again: in place, the order kept
        await self.close_group()

    def shown(self) -> str:
        """The answer text that had streamed (what a stopped answer leaves for the conversation)."""
        return self.streamed.strip()

    async def stopped(self) -> None:
        """The user pressed stop: keep what streamed, marked."""
        await self.release()
        await self._stop_ticker()
        await self.batcher.close()
        self.message.content = (md.safe_answer(self.streamed) + "\n\n*(stopped)*").strip()
        await self.message.update()
        await self.close_group("stopped")

    def close(self) -> None:
        """Whatever the answer still holds open, let go however it ended (see CompareView)."""

    async def failed(self, text: str) -> None:
        """Answering failed: the bubble says why, in one line."""
        await self.release()
        await self._stop_ticker()
        await self.batcher.close()
        self.message.content = f"**Not answered:** {md.plain(text)}"
        await self.message.update()
        await self.close_group("failed")


STAGE_ICONS = {"build prompt": "file-text", "extract": "quote", "off topic": "circle-slash"}
HOLDABLE = (Retrieved, StageFinished, ModelStarted, TokenDelta, ReasoningDelta)  # the events before the first text


NEXT_COLUMNS = "next_columns"  # the session's ReadyColumns, if any


@dataclass(frozen=True)
class ReadyColumns:
    """The next side-by-side answer's empty columns, already on the page (see `ready_columns`)."""

    message_id: str  # the answer's bubble, not sent yet: the columns show once it is
    element: cl.CustomElement
    token: str  # its live feed's, opened when the answer starts


def columns_element(token: str) -> cl.CustomElement:
    """Side by side's element: empty columns that fill from the live feed `token`."""
    return cl.CustomElement(name=COMPARE, props={"columns": [], "sources": 0, "live": token}, display="inline")


async def ready_columns() -> None:
    """Put the next side-by-side answer's columns on the page now, while nobody waits for an answer.

    An element's arrival re-renders every message of the chat: by the 30th answer that took longer than
    the models take to start, and delayed the columns' first text (issue 25). Sent after an answer (and
    when side by side is chosen), for a bubble not sent yet, the element is on the page but shown nowhere
    until its answer's bubble arrives, which then re-renders only itself. It is stored with its answer's
    final props; a reload or a reopened chat forgets it (see `forget_ready_columns`).
    """
    if isinstance(cl.user_session.get(NEXT_COLUMNS), ReadyColumns):
        return
    token = FEEDS.new_token()
    ready = ReadyColumns(str(uuid.uuid4()), columns_element(token), token)
    cl.user_session.set(NEXT_COLUMNS, ready)  # before the send: a second call meanwhile sends no second one
    try:
        await ready.element.send(for_id=ready.message_id, persist=False)
    except BaseException:
        forget_ready_columns()
        raise


def forget_ready_columns() -> None:
    """The page's elements were replaced (a reopened chat: Chainlit sends the stored ones after
    `on_chat_resume`), so ready columns sent before are gone: the next answer sends its own."""
    cl.user_session.set(NEXT_COLUMNS, None)


class CompareView(AnswerView):
    """Renders a side-by-side comparison: one custom element with two columns.

    The element is on the page before the question is asked (`ready_columns`), or else goes out with the
    bubble at the answer's first event, before the models answer: an element's arrival re-renders every
    message of the chat, so it is done while nobody (or only the models) is waited for, not when their
    first text is due. While they stream, the columns change through a live feed (rag.ui.live), which
    re-renders the element only; its props are updated once, at the end, for a reload or a reopened
    conversation to show the final columns.
    """

    def __init__(self, message: cl.Message, services: Services) -> None:
        super().__init__(message, services)
        self.columns: compare_columns.Columns = {}
        ready = cl.user_session.get(NEXT_COLUMNS)
        cl.user_session.set(NEXT_COLUMNS, None)  # this answer's, whatever happens to it
        self.ready = isinstance(ready, ReadyColumns)
        if isinstance(ready, ReadyColumns):
            message.id = ready.message_id  # the bubble its columns were sent for
            self.feed = FEEDS.open(ready.token)
            self.element = ready.element
        else:
            self.feed = FEEDS.open()
            self.element = columns_element(self.feed.token)
        # A feed update costs the page one element's render: 20 a second are smooth and cheap.
        self.batcher = TokenBatcher(self._refresh, interval=0.05)
        self.text_sent = False  # the columns' first text is in the feed

    HOLD_S = 1.0  # the columns show each model's state from the start: the steps can wait for the first text
    DRAW_S = 0.1  # from the first text written to the page to the steps sent after it

    async def _release_when_drawn(self, version: int) -> None:
        """Send the held steps once the page has the columns' first text (feed `version`), and time to draw it.

        The text goes by the live feed, the steps by the websocket: sent together, the page often handled
        the steps first (a render of the whole chat, longer the longer the chat) and drew the text after
        them (issue 25). A page that never reads the feed (another app process) gets the steps after HOLD_S.
        """
        if await self.feed.reached(version, self.HOLD_S):
            await asyncio.sleep(self.DRAW_S)
        await self.release()

    def _columns(self, sources: int | None = None) -> list[dict[str, object]]:
        """The columns' props, their citations linked to this answer's sources list."""
        count = sources if sources is not None else self.element.props.get("sources", 0)
        return compare_columns.props(self.columns, f"source-{self.message.id}", count if isinstance(count, int) else 0)

    async def _refresh(self, _: str = "") -> None:
        self.feed.publish({**self.element.props, "columns": self._columns()})

    async def _show_columns(self) -> None:
        """The bubble with the (empty) columns, sent now; the steps stay held (see AnswerView)."""
        if self.bubble_sent:  # every event passes here: no lock once it is out
            return
        async with self.sending:
            if self.bubble_sent:
                return
            self.bubble_sent = True  # before the send: a stop meanwhile finds the columns, not an empty bubble
            self.message.content = "**Side by side**: phi-4-mini and gpt-oss-20b on the same question and sources."
            # A ready element is on the page already: sent again, it would re-render every message.
            self.message.elements = [] if self.ready else elements(self.element)
            await self.message.send()
            self.message.elements = elements(self.element)  # its final props go out with the bubble's updates

    async def _final(self, props: dict[str, object]) -> None:
        """The element's own props, final, and the feed closed (the page goes back to the props)."""
        await self.batcher.close()
        self.element.props = {**props, "live": None}
        self.close()

    async def _begin_waiting(self, role: str) -> None:
        """Each column shows its own status; the bubble holds the columns, not a status line."""

    async def on(self, event: object) -> None:
        """Model events go to their column; the rest as in a single answer."""
        await self._show_columns()
        if not isinstance(event, HOLDABLE):
            await self.release()
        if isinstance(event, Retrieved):
            self.element.props["sources"] = len(event.result.passages)
        if isinstance(event, (ModelStarted, TokenDelta, ReasoningDelta, ModelFinished, ModelFailed)):
            self.columns = compare_columns.advance(self.columns, event, time.perf_counter())
        if isinstance(event, ModelStarted):
            await self._start_model(event)
            await self._refresh()
        elif isinstance(event, (TokenDelta, ReasoningDelta)):
            self.batcher.add(event.text)
            if not self.live and not self.text_sent:
                self.text_sent = True
                await self.batcher.drain()  # the first text: in its column now, the held steps once it is drawn
                self.holding.cancel()
                self.releasing = asyncio.ensure_future(self._release_when_drawn(self.feed.version))
            await self._track(event)
        elif isinstance(event, ModelFinished):
            await self._model_finished(event.role, event.generation, event.cost_usd)
            await self._refresh()
        elif isinstance(event, ModelFailed):
            await self._model_failed(event)
            await self._refresh()  # its column says so now, not at the next token
        elif isinstance(event, Comparison):
            await self._comparison(event)
        else:
            await super().on(event)

    async def _comparison(self, result: Comparison) -> None:
        self.columns = compare_columns.finished(result)
        await self._final({"columns": self._columns(len(result.sources)), "sources": len(result.sources)})
        lines = ["**Side by side**: " + " vs ".join(f"{c.alias}" for c in result.columns) + ", same question and sources."]
        total_cost = sum(c.cost_usd for c in result.columns)
        lines.append(f"\n*side by side · both models · ${total_cost:.6f} (hypothetical) · {format_ms(result.timings_ms.get('total', 0.0))} total*")
        self.message.content = "\n".join(lines)
        self.message.metadata = answer_metadata("compare", " vs ".join(c.alias for c in result.columns))
        cited = tuple(sorted({n for c in result.columns for n in c.cited}))
        sources = [sources_element(result.sources, cited, f"source-{self.message.id}", self.services)] if result.sources else []
        self.message.elements = elements(self.element, *sources)
        await self.message.update()
        await self.close_group()

    def close(self) -> None:
        FEEDS.close(self.feed)

    def shown(self) -> str:
        """What the columns had streamed, each labelled with its model."""
        return "\n\n".join(f"{state.column.alias}: {state.column.text.strip()}"
                             for state in self.columns.values() if state.column.text.strip())

    async def stopped(self) -> None:
        """The user pressed stop: the columns stay as they are, marked."""
        if not self.bubble_sent:  # stopped before anything was shown: no empty columns
            await self._drop_columns()
            await super().stopped()
            return
        await self.release()
        self.columns = compare_columns.stopped(self.columns)
        await self._final({**self.element.props, "columns": self._columns()})
        self.message.content = (self.message.content or "") + "\n\n*(stopped)*"
        await self.message.update()
        await self.close_group("stopped")

    async def failed(self, text: str) -> None:
        """Answering failed: the columns keep what they showed (none before they were shown: no empty
        columns over a failed search), the bubble says why."""
        if self.bubble_sent:
            await self._final({**self.element.props, "columns": self._columns()})
        else:
            await self._drop_columns()
        await super().failed(text)

    async def _drop_columns(self) -> None:
        """Ended before the bubble went out: no columns at all; ready ones (on the page for this bubble)
        are removed."""
        self.close()
        if self.ready:
            await self.element.remove()


async def collapse(step: cl.Step) -> None:
    """Close an answer's latency step: a newer answer is below it (closed also when the conversation is
    reopened)."""
    step.default_open = False
    step.auto_collapse = True  # Chainlit closes a step once it is done and its auto_collapse turns on
    await step.update()


def elements(*shown: cl.Element) -> list[Any]:
    """Elements for `Message.elements` (typed there with an unbound TypeVar that no list satisfies)."""
    return list(shown)


def escalation_name(event: EscalationDecided) -> str:
    """'escalate → gpt-oss-20b: draft too short (+1 more)': short, the first reason's kind; all are inside."""
    if not event.reasons:
        return f"escalate → {event.target}"
    first = event.reasons[0].split(" (")[0].split(":")[0]
    more = f" (+{len(event.reasons) - 1} more)" if len(event.reasons) > 1 else ""
    return f"escalate → {event.target}: {first}{more}"


def retrieval_summary(event: Retrieved) -> str:
    """The retrieve step's text: the query, the support signals, and the passages by rank."""
    s = event.result.signals
    support = (  # on a chosen text or file (a corpus of one) the number would mean nothing: not shown, not used
        "support: not judged, you chose the documents (attached or pasted)" if event.chosen else
        f"support {s.support:.0%} (estimated chance the documents answer this question; "
        f"{md.plain(event.result.calibration or 'shipped prior')})")
    lines = [f"query: {md.code(repr(event.query))}"]
    if event.earlier:  # a follow-up: says so, and with what
        # a chain of follow-ups, oldest first, one question after the other (not "…?\nand…" on one line)
        chain = " → ".join(repr(question) for question in event.earlier.split("\n"))
        lines.append(f"a follow-up: searched with what it follows, at {EARLIER_WEIGHT:.0%} weight: {md.code(chain)}")
    if s.on_topic is not None and not event.chosen:
        # a corpus calibration's own off-topic estimate: the refusal reads this, not the support above, so
        # the step shows both (a first-contact walk saw "support 2%" answered and "support 1%" refused)
        support += f"; about your documents at all: {s.on_topic:.0%} (what the off-topic refusal reads)"
    lines += [
        support,
        f"top score {s.top_score:.2f} ({s.normalized_top:.0%} of the highest possible), margin {s.margin:.2f}, "
        f"coverage {s.coverage:.0%} (idf-weighted {s.weighted_coverage:.0%}) of {s.query_terms} terms",
    ]
    lines += [f"{p.rank}. {md.code(p.chunk.location)} · score {p.score:.2f}" for p in event.result.passages]
    return "\n".join(lines)


def sources_element(sources: tuple[SourceRef, ...], cited: tuple[int, ...], anchor: str,
                    services: Services) -> cl.CustomElement:
    """The sources under an answer: each opens to its passage, rendered, marked inside the text around it.

    `anchor` prefixes each source's element id, which the answer's [n] links point at.
    """
    index = services.retriever.index
    items = []
    for ref in sources:
        chunk = ref.passage.chunk
        before, after = index.context(chunk)
        items.append({
            "number": ref.number, "location": chunk.location, "chunk": chunk.index, "page": chunk.page,
            "span": [chunk.start, chunk.end], "score": round(ref.passage.score, 2), "cited": ref.number in cited,
            "text": md.safe_answer(md.unwrap(chunk.text)), "before": md.safe_answer(md.unwrap(before)),
            "after": md.safe_answer(md.unwrap(after)),
        })
    return cl.CustomElement(name=SOURCES, display="inline", props={"anchor": anchor, "sources": items})


def pdf_pages(sources: tuple[SourceRef, ...], cited: tuple[int, ...], services: Services) -> list[cl.Pdf]:
    """Chainlit's PDF viewer, open at the page, for each cited PDF source (one per document and page)."""
    root = services.settings.corpus_dir
    viewers: dict[tuple[str, int], cl.Pdf] = {}
    for ref in sorted(sources, key=lambda r: r.number):  # in the order the answer numbers them
        chunk = ref.passage.chunk
        if ref.number in cited and chunk.page and chunk.source.lower().endswith(".pdf") and (root / chunk.source).is_file():
            # The page first: Chainlit cuts a long label at its end, which was where the page number was.
            viewers.setdefault((chunk.source, chunk.page), cl.Pdf(
                name=f"[{ref.number}] page {chunk.page} · {PurePosixPath(chunk.source).name}",
                path=str(root / chunk.source), page=chunk.page, display="inline"))
    return list(viewers.values())
