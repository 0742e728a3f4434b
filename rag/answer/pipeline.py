"""The answering pipeline: retrieve, build the prompt, draft, decide, escalate; an async stream of events.

The chat UI and the CLI are two consumers of the same event stream (`rag.types.PipelineEvent`). The
pipeline owns every timing, measured with an injectable monotonic clock.

Faults degrade rather than fail: if gpt-oss-20b fails after a draft, the draft stands with a note; if
every model fails or none is reachable, the answer is an extract of the retrieved passages, labelled so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import Protocol

from rag.answer.extractive import extract_answer
from rag.answer.options import AnswerOptions
from rag.answer.follow_ups import retrieval_query
from rag.answer.prompt import Prompt, Turn, build_prompt, general_prompt
from rag.citations import cited_sources
from rag.errors import ModelError, ModelUnavailable
from rag.index.analysis import Analyzer
from rag.index.languages import refuses
from rag.llm.client import ChatModel, ModelDelta
from rag.llm.tokens import Tokenizer
from rag.policy.decisions import DraftSignals, Progress, Ran, Step, next_step
from rag.policy.grounding import draft_support
from rag.types import (
    Answer,
    Clock,
    Column,
    Comparison,
    EscalationDecided,
    Generation,
    Kind,
    Mode,
    ModelFailed,
    ModelFinished,
    ModelStarted,
    Passage,
    PipelineEvent,
    ReasoningDelta,
    Retrieved,
    Role,
    SearchResult,
    SourceRef,
    StageFinished,
    SupportSignals,
    TokenDelta,
)


class Searcher(Protocol):
    """What the pipeline needs of retrieval."""

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """The k best passages for the query, optionally only from `sources`; `earlier`: what the query
        follows when it is a follow-up (the earlier questions, one per line; their words weigh less than
        the query's own)."""
        ...


class ModelProvider(Protocol):
    """Where the pipeline gets its models; None when a model is not available right now."""

    async def get(self, kind: Kind) -> ChatModel | None:
        """The small or large model, if reachable."""
        ...

    def report_unavailable(self, kind: Kind) -> None:
        """A model turned out to be unreachable: look again next time."""
        ...

    def problems(self) -> tuple[str, ...]:
        """What went wrong the last time the models were looked for (servers down, ids not served)."""
        ...


Outcome = ModelFinished | ModelFailed | None  # how one model request ended (None: not run, or still running)


def outcome_of(event: PipelineEvent, previous: Outcome) -> Outcome:
    """The request's outcome once `event` has been seen: its ModelFinished or ModelFailed event."""
    return event if isinstance(event, (ModelFinished, ModelFailed)) else previous


class Pipeline:
    """Answers one question at a time; holds no per-conversation state (history is passed in)."""

    def __init__(
        self,
        searcher: Searcher,
        models: ModelProvider,
        analyzer: Analyzer,
        tokenizer: Tokenizer,
        clock: Clock = time.perf_counter,
    ) -> None:
        self._searcher = searcher
        self._models = models
        self._analyzer = analyzer
        self._tokenizer = tokenizer
        self._clock = clock

    def with_searcher(self, searcher: Searcher) -> Pipeline:
        """The same pipeline retrieving from `searcher` (e.g. text pasted into one chat)."""
        return Pipeline(searcher, self._models, self._analyzer, self._tokenizer, self._clock)

    async def run(
        self,
        question: str,
        history: Sequence[Turn] = (),
        options: AnswerOptions | None = None,
        focus: frozenset[str] | None = None,
    ) -> AsyncIterator[PipelineEvent]:
        """Answer `question`; yields progress events and ends with exactly one `Answer`.

        `focus` restricts retrieval to those documents (files attached to this message). What runs when is
        decided by one pure function, `rag.policy.decisions.next_step`; this loop carries its steps out.
        """
        opts = options or AnswerOptions()
        started = self._clock()
        timings: dict[str, float] = {}
        retrieved = await self._retrieve(question, history, opts, focus, timings)
        yield retrieved
        result = retrieved.result
        turn = Progress(opts.mode, bool(focus), result.signals)
        models: dict[Kind, ChatModel | None] = {"small": None, "large": None}
        outcomes: dict[Kind, ModelFinished] = {}
        prompt: Prompt | None = None
        notes: list[str] = []
        reasons: tuple[str, ...] = ()
        t = self._clock()
        while True:
            step = next_step(turn, opts.policy)
            if step.action == "look up models":
                models = await self._available(opts.mode)
                turn = replace(turn, available=(models["small"] is not None, models["large"] is not None),
                               small=_name(models["small"], "small"), large=_name(models["large"], "large"))
                continue
            if step.action == "off topic":
                timings["off_topic"] = self._ms(t)
                async for event in self._off_topic(question, history, opts, timings, started, step, models, result.signals):
                    yield event
                return
            if step.action == "extract":
                found = self._models.problems() if not turn.ran else ()
                why = f"{step.why}: {'; '.join(found)}" if found else step.why
                async for event in self._extractive(question, result, opts, timings, started, why):
                    yield event
                return
            if prompt is None:
                prompt, built = self._prompt(question, result, history, opts, timings)
                yield built
            if step.announce is not None:
                shown = step.announce
                timings["escalate"] = self._ms(t)
                yield EscalationDecided(shown.escalate, shown.reasons, turn.large, shown.before_draft,
                                        timings["escalate"], shown.applied)
                if step.kind == "large" and shown.applied:
                    reasons = shown.reasons
            if step.note:
                notes.append(step.note)
            if step.action == "accept":
                assert step.kind is not None
                yield self._answer(question, outcomes, step.kind, prompt, opts, timings, started, notes, reasons)
                return
            assert step.kind is not None
            final: Outcome = None
            async for event in self._generate(step.role, step.kind, models, prompt, opts, timings):
                yield event
                final = outcome_of(event, final)
            t = self._clock()
            turn = replace(turn, ran=(*turn.ran, self._ran(step, final, prompt, result, bool(focus))))
            if isinstance(final, ModelFinished):
                outcomes[step.kind] = final
            if len(turn.ran) == 1 and step.kind == "small":  # the verdict on a draft is timed, as before
                timings["escalate"] = self._ms(t) if isinstance(final, ModelFinished) else 0.0

    async def _available(self, mode: Mode) -> dict[Kind, ChatModel | None]:
        """The models this mode may use, looked up once per question."""
        return {
            "small": await self._models.get("small") if mode in ("auto", "small") else None,
            "large": await self._models.get("large") if mode in ("auto", "large") else None,
        }

    def _ran(self, step: Step, final: Outcome, prompt: Prompt, result: SearchResult, focused: bool) -> Ran:
        """How a model request ended, measured for the policy (a finished draft: its signals)."""
        assert step.kind is not None
        if isinstance(final, ModelFailed):
            return Ran(step.kind, step.role, final.reason or "unknown error", final.message)
        if not isinstance(final, ModelFinished):
            return Ran(step.kind, step.role, "no result", "no result")
        draft = None
        if step.kind == "small":
            cited = final.cited
            draft = self._signals(final.generation, prompt, result, cited, focused)
        return Ran(step.kind, step.role, draft=draft)

    def _answer(
        self, question: str, outcomes: Mapping[Kind, ModelFinished], kind: Kind, prompt: Prompt,
        opts: AnswerOptions, timings: dict[str, float], started: float, notes: list[str], reasons: tuple[str, ...],
    ) -> Answer:
        """The final answer: the accepted model's text, with every completed request counted."""
        final = outcomes[kind]
        draft = outcomes.get("small") if kind == "large" and opts.mode == "auto" else None
        generation = final.generation
        if (cut := incomplete_note(generation, kind, opts)) is not None:
            notes = [*notes, cut]
        escalated = kind == "large" and opts.mode == "auto"
        runs = (final,) if draft is None else (draft, final)  # an escalated answer: the draft and the final
        timings["total"] = self._ms(started)
        return Answer(
            text=generation.text,
            model=generation.alias,
            model_id=generation.model_id,
            backend=generation.endpoint,
            mode=opts.mode,
            escalated=escalated,
            reasons=reasons if escalated else (),
            sources=numbered(prompt.sources),
            cited=final.cited,
            timings_ms=MappingProxyType(dict(timings)),
            prompt_tokens=sum(r.generation.prompt_tokens for r in runs),
            completion_tokens=sum(r.generation.completion_tokens for r in runs),
            usage_estimated=any(r.generation.usage_estimated for r in runs),
            cost_usd=sum(r.cost_usd for r in runs),
            draft=draft.generation.text if draft is not None else None,
            reasoning=generation.reasoning,
            note=" ".join(notes) or None,
            runs=runs,
        )

    async def _off_topic(
        self, question: str, history: Sequence[Turn], opts: AnswerOptions, timings: dict[str, float],
        started: float, step: Step, models: Mapping[Kind, ChatModel | None], signals: SupportSignals,
    ) -> AsyncIterator[PipelineEvent]:
        """The documents do not cover the question: say so, or (RAG_OFF_TOPIC=general) let a model answer
        from general knowledge, labelled as not from the documents."""
        general = opts.policy.off_topic == "general"
        why, kind = step.why, step.kind
        # The user reads a plain answer; the figures and what an administrator could change are in the step.
        admin = "" if general else (" An administrator can set RAG_OFF_TOPIC=general to let a model answer such "
                                    "questions from general knowledge, labelled as not from the documents.")
        yield StageFinished("off topic", timings["off_topic"],
                            why + (": answering from general knowledge" if general else ": not answered." + admin))
        answer = partial(Answer, mode=opts.mode, escalated=False, reasons=(), sources=(), cited=(), grounded=False)
        refused = partial(answer, model="off-topic", model_id="", backend="embedded", prompt_tokens=0,
                          completion_tokens=0, usage_estimated=False, cost_usd=0.0)
        if kind is None:
            timings["total"] = self._ms(started)
            suffix = "" if not general else " No model is available to answer from general knowledge."
            yield refused(
                text=f"Your documents do not cover this question, so I have not answered it.{suffix}\n\n"
                     "Ask about something they contain, or add a document that covers it.",
                timings_ms=MappingProxyType(dict(timings)),
            )
            return
        t = self._clock()
        prompt = general_prompt(question, history, self._tokenizer, opts.context_tokens, opts.history_turns)
        timings["build_prompt"] = self._ms(t)
        yield StageFinished("build prompt", timings["build_prompt"],
                            f"general knowledge, {prompt.history_turns} earlier turns, {prompt.tokens} tokens")
        final: Outcome = None
        async for event in self._generate("final", kind, models, prompt, opts, timings):
            yield event
            final = outcome_of(event, final)
        timings["total"] = self._ms(started)
        if not isinstance(final, ModelFinished):
            yield refused(
                text="Your documents do not cover this question, and the model that would have answered from "
                     f"general knowledge failed: {final.message if final else 'no answer'}",
                timings_ms=MappingProxyType(dict(timings)),
            )
            return
        g = final.generation
        yield answer(
            text=g.text, model=g.alias, model_id=g.model_id, backend=g.endpoint,
            timings_ms=MappingProxyType(dict(timings)), prompt_tokens=g.prompt_tokens,
            completion_tokens=g.completion_tokens, usage_estimated=g.usage_estimated, cost_usd=final.cost_usd,
            reasoning=g.reasoning, runs=(final,),
            note=" ".join(filter(None, (f"Not from your documents: {g.alias} answered from general knowledge ({why}).",
                                        incomplete_note(g, kind, opts)))),
        )

    async def compare(
        self,
        question: str,
        history: Sequence[Turn] = (),
        options: AnswerOptions | None = None,
        focus: frozenset[str] | None = None,
    ) -> AsyncIterator[PipelineEvent]:
        """Both models answer the same question from the same sources, concurrently; ends with `Comparison`.

        Events of the two streams are interleaved as they arrive (roles 'left' = small, 'right' = large).
        One model failing or missing fills its column with the error; the other still completes.
        """
        opts = options or AnswerOptions()
        started = self._clock()
        timings: dict[str, float] = {}
        retrieved = await self._retrieve(question, history, opts, focus, timings)
        yield retrieved
        prompt, built = self._prompt(question, retrieved.result, history, opts, timings)
        yield built

        sides: tuple[tuple[Role, Kind], ...] = (("left", "small"), ("right", "large"))
        models: dict[Kind, ChatModel | None] = {kind: await self._models.get(kind) for _, kind in sides}
        outcomes: dict[Role, Outcome] = {}
        queue: asyncio.Queue[PipelineEvent | None] = asyncio.Queue()

        async def pump(role: Role, kind: Kind) -> None:
            try:
                if models[kind] is not None:
                    async for event in self._generate(role, kind, models, prompt, opts, timings):
                        await queue.put(event)
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(role, kind)) for role, kind in sides]
        try:
            pending = len(tasks)
            while pending:
                event = await queue.get()
                if event is None:
                    pending -= 1
                else:
                    if isinstance(event, (ModelFinished, ModelFailed)):
                        outcomes[event.role] = event
                    yield event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        columns = []
        for role, kind in sides:
            outcome, model = outcomes.get(role), models[kind]
            alias = model.alias if model is not None else f"the {kind} model"
            if isinstance(outcome, ModelFinished):
                g = outcome.generation
                columns.append(Column(g.alias, g.model_id, g.text, g.reasoning, None, g, outcome.cost_usd,
                                      outcome.cited, incomplete_note(g, kind, opts)))
            elif isinstance(outcome, ModelFailed):
                columns.append(Column(alias, model.model_id if model else "", outcome.partial_text, error=outcome.message))
            else:
                columns.append(Column(alias, "", error=f"{alias} is not available (no server serves it)"))
        timings["total"] = self._ms(started)
        yield Comparison(question, tuple(columns), numbered(prompt.sources), MappingProxyType(dict(timings)))

    async def _retrieve(
        self, question: str, history: Sequence[Turn], opts: AnswerOptions, focus: frozenset[str] | None,
        timings: dict[str, float],
    ) -> Retrieved:
        """The retrieve stage: the question (with the previous one, weighted less, for a follow-up), timed."""
        query, earlier = retrieval_query(question, history)
        t = self._clock()
        result = await self._searcher.search(query, opts.top_k, focus, earlier)
        timings["retrieve"] = self._ms(t)
        return Retrieved(result, query, timings["retrieve"], focus is not None, earlier)

    def _prompt(
        self, question: str, result: SearchResult, history: Sequence[Turn], opts: AnswerOptions,
        timings: dict[str, float],
    ) -> tuple[Prompt, StageFinished]:
        """The build-prompt stage, timed."""
        t = self._clock()
        prompt = build_prompt(question, result.passages, history, self._tokenizer, opts.context_tokens, opts.history_turns)
        timings["build_prompt"] = self._ms(t)
        detail = f"{len(prompt.sources)} sources, {prompt.history_turns} earlier turns, {prompt.tokens} tokens"
        return prompt, StageFinished("build prompt", timings["build_prompt"], detail)

    async def _generate(
        self,
        role: Role,
        kind: Kind,
        models: Mapping[Kind, ChatModel | None],
        prompt: Prompt,
        opts: AnswerOptions,
        timings: dict[str, float],
    ) -> AsyncIterator[PipelineEvent]:
        """Stream one model's answer as events, ending with its ModelFinished or ModelFailed."""
        model = models[kind]
        assert model is not None, "routing only runs available models"
        yield ModelStarted(role, model.alias, model.model_id, model.endpoint)
        generation: Generation | None = None
        try:
            # Log-probabilities only for a draft: the escalation policy reads them, and they cost time.
            async for item in model.stream(prompt.messages, opts.max_tokens(kind), opts.temperature, role == "draft",
                                           opts.seed):
                if isinstance(item, ModelDelta):
                    if item.kind == "answer":
                        yield TokenDelta(role, model.alias, item.text)
                    else:
                        yield ReasoningDelta(role, model.alias, item.text)
                else:
                    generation = item
        except ModelError as exc:
            if isinstance(exc, ModelUnavailable):
                self._models.report_unavailable(kind)
            yield ModelFailed(role, model.alias, str(exc), exc.partial, exc.reason)
            return
        if generation is None:
            yield ModelFailed(role, model.alias, f"{model.alias}: the stream ended without a result", "", "no result")
            return
        timings[f"{role}_first_token"] = round(generation.first_token_ms, 1)
        timings[f"{role}_generation"] = round(generation.generation_ms, 1)
        yield ModelFinished(role, generation, opts.cost(kind, generation), cited_sources(generation.text, len(prompt.sources)))

    async def _extractive(
        self,
        question: str,
        result: SearchResult,
        opts: AnswerOptions,
        timings: dict[str, float],
        started: float,
        why: str,
    ) -> AsyncIterator[PipelineEvent]:
        t = self._clock()
        passages = result.passages[: opts.top_k]
        text = extract_answer(result.analysed_terms, passages, self._analyzer)
        timings["extract"] = self._ms(t)
        yield StageFinished("extract", timings["extract"], why)
        timings["total"] = self._ms(started)
        yield Answer(
            text=text,
            model="extractive",
            model_id="extractive",
            backend="embedded",
            mode=opts.mode,
            escalated=False,
            reasons=(),
            sources=numbered(passages),
            cited=cited_sources(text, len(passages)),
            timings_ms=MappingProxyType(dict(timings)),
            prompt_tokens=0,
            completion_tokens=0,
            usage_estimated=False,
            cost_usd=0.0,
            note=why,
        )

    def _signals(
        self, generation: Generation, prompt: Prompt, result: SearchResult, cited: tuple[int, ...], focused: bool,
    ) -> DraftSignals:
        """What the policy measures of a draft (the question as retrieval analysed it: analysed once)."""
        checked = draft_support(generation.text, prompt.sources, result.analysed_terms, self._analyzer)
        return DraftSignals(
            retrieval=result.signals,
            answer_tokens=self._tokenizer.count(generation.text),
            refuses=refuses(generation.text),
            cites_source=bool(cited),
            mean_logprob=generation.mean_logprob,
            sources=len(prompt.sources),
            chosen_sources=focused,
            draft_support=checked.share if checked is not None else None,
            incomplete=generation.incomplete,
        )

    def _ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000, 3)


def _name(model: ChatModel | None, kind: Kind) -> str:
    """A model's alias for notes, or what it would be called when it is not available."""
    return model.alias if model is not None else f"the {kind} model"


def incomplete_note(generation: Generation, kind: Kind, opts: AnswerOptions) -> str | None:
    """What the user is told when an answer is not the model's whole answer (None when it is)."""
    if generation.cut:
        return (f"The answer was cut: {generation.alias} kept sending far past the {opts.max_tokens(kind)} "
                "tokens asked for, and the rest was not read.")
    if generation.finish_reason is None:
        return (f"The answer is incomplete: {generation.alias}'s stream ended before the model finished "
                "(the server closed the connection without a finish reason).")
    if generation.finish_reason == "length":
        setting = "RAG_SMALL_MAX_TOKENS" if kind == "small" else "RAG_LARGE_MAX_TOKENS"
        return (f"The answer is incomplete: {generation.alias} reached the {opts.max_tokens(kind)}-token limit "
                f"({setting}) mid-answer.")
    return None


def numbered(passages: Sequence[Passage]) -> tuple[SourceRef, ...]:
    """Passages as the sources [1], [2], ... the prompt and the answer cite."""
    return tuple(SourceRef(i, p) for i, p in enumerate(passages, start=1))
