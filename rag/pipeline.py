"""The answering pipeline: retrieve, build the prompt, draft, decide, escalate; an async stream of events.

The chat UI and the CLI are two consumers of the same event stream (`rag.types.PipelineEvent`). The
pipeline owns every timing, measured with an injectable monotonic clock.

Faults degrade rather than fail: if gpt-oss-20b fails after a draft, the draft stands with a note; if
every model fails or none is reachable, the answer is an extract of the retrieved passages, labelled so.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from rag.analysis import Analyzer
from rag.errors import ModelError, ModelUnavailable
from rag.escalation import DraftSignals, cited_sources, decide, off_topic, refuses
from rag.extractive import extract_answer
from rag.grounding import draft_support
from rag.models import ChatModel, ModelDelta
from rag.options import AnswerOptions
from rag.prompt import Prompt, Turn, build_prompt, general_prompt, retrieval_query
from rag.routing import after_large_failure, after_small, general_knowledge_model, plan
from rag.tokens import Tokenizer
from rag.types import (
    Answer,
    Clock,
    Column,
    Comparison,
    EscalationDecided,
    Generation,
    Kind,
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

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None) -> SearchResult:
        """The k best passages for the query, optionally only from `sources`."""
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

        `focus` restricts retrieval to those documents (files attached to this message). Which model runs
        when is decided by the pure functions of `rag.routing`; results are read from the events.
        """
        opts = options or AnswerOptions()
        started = self._clock()
        timings: dict[str, float] = {}

        retrieved = await self._retrieve(question, history, opts, focus, timings)
        yield retrieved
        result = retrieved.result

        t = self._clock()
        uncovered = off_topic(result.signals, opts.policy, bool(focus))
        if uncovered is not None:
            timings["off_topic"] = self._ms(t)
            async for event in self._off_topic(question, history, opts, timings, started, uncovered, result.signals):
                yield event
            return

        models: dict[Kind, ChatModel | None] = {
            "small": await self._models.get("small") if opts.mode in ("auto", "small") else None,
            "large": await self._models.get("large") if opts.mode in ("auto", "large") else None,
        }
        small, large = models["small"], models["large"]
        t = self._clock()
        route = plan(opts.mode, small is not None, large is not None, bool(focus), result.signals, opts.policy)
        if route.first is None:
            found = self._models.problems()
            why = f"{route.why}: {'; '.join(found)}" if found else route.why
            async for event in self._extractive(question, result, opts, timings, started, why):
                yield event
            return

        prompt, built = self._prompt(question, result, history, opts, timings)
        yield built
        large_alias = large.alias if large is not None else "the large model"
        small_alias = small.alias if small is not None else "the small model"
        reasons = route.escalated_early
        if reasons:
            timings["escalate"] = self._ms(t)
            yield EscalationDecided(True, reasons, large_alias, route.before_draft, timings["escalate"])

        notes: list[str] = []
        draft: ModelFinished | None = None
        draft_cited: tuple[int, ...] = ()
        kind: Kind = route.first  # the model behind `final`
        final: Outcome = None
        async for event in self._generate(route.role, kind, models, prompt, opts, timings):
            yield event
            final = outcome_of(event, final)
        failures = [final] if isinstance(final, ModelFailed) else []

        if kind == "small":
            t = self._clock()
            verdict = None
            if isinstance(final, ModelFinished):
                draft = final
                draft_cited = cited_sources(draft.generation.text, len(prompt.sources))
                verdict = decide(self._signals(draft.generation, prompt, result, draft_cited, bool(focus), question),
                                 opts.policy)
            failure = final.reason if isinstance(final, ModelFailed) else None
            step = after_small(opts.mode, large is not None, verdict, failure, small_alias)
            timings["escalate"] = self._ms(t) if verdict is not None else 0.0
            if step.announce:
                yield EscalationDecided(step.escalate, step.reasons, large_alias, False, timings["escalate"], step.applied)
            if step.note:
                notes.append(step.note)
            if step.run_large:
                reasons, kind, final = step.reasons, "large", None
                async for event in self._generate("final", "large", models, prompt, opts, timings):
                    yield event
                    final = outcome_of(event, final)
                if isinstance(final, ModelFailed):
                    failures.append(final)

        if kind == "large" and isinstance(final, ModelFailed):
            fallback = after_large_failure(draft is not None, route.before_draft, small is not None)
            if fallback == "draft":
                notes.append(f"Not improved: {large_alias} failed ({final.reason}); this is {small_alias}'s draft.")
                kind, final = "small", draft
            elif fallback == "small":
                why, kind, final = final.reason, "small", None
                async for event in self._generate("final", "small", models, prompt, opts, timings):
                    yield event
                    final = outcome_of(event, final)
                if isinstance(final, ModelFinished):
                    notes.append(f"{large_alias} failed ({why}); answered by {small_alias} instead.")
                elif isinstance(final, ModelFailed):
                    failures.append(final)

        if not isinstance(final, ModelFinished):
            why = "; ".join(f.message for f in failures) or "no model answered"
            async for event in self._extractive(question, result, opts, timings, started, why):
                yield event
            return

        generation = final.generation
        if (cut := incomplete_note(generation, kind, opts)) is not None:
            notes.append(cut)
        escalated = kind == "large" and opts.mode == "auto"
        # Every completed request counts (an escalated answer: the draft and the large model's answer).
        runs = (final,) if draft is None or draft is final else (draft, final)
        timings["total"] = self._ms(started)
        yield Answer(
            text=generation.text,
            model=generation.alias,
            model_id=generation.model_id,
            backend=generation.endpoint,
            mode=opts.mode,
            escalated=escalated and opts.mode == "auto",
            reasons=reasons if escalated else (),
            sources=numbered(prompt.sources),
            cited=draft_cited if final is draft else cited_sources(generation.text, len(prompt.sources)),
            timings_ms=MappingProxyType(dict(timings)),
            prompt_tokens=sum(r.generation.prompt_tokens for r in runs),
            completion_tokens=sum(r.generation.completion_tokens for r in runs),
            usage_estimated=any(r.generation.usage_estimated for r in runs),
            cost_usd=sum(r.cost_usd for r in runs),
            draft=draft.generation.text if draft is not None and draft is not final else None,
            reasoning=generation.reasoning,
            note=" ".join(notes) or None,
            runs=runs,
        )

    async def _off_topic(
        self, question: str, history: Sequence[Turn], opts: AnswerOptions, timings: dict[str, float],
        started: float, why: str, signals: SupportSignals,
    ) -> AsyncIterator[PipelineEvent]:
        """The documents do not cover the question: say so, or (RAG_OFF_TOPIC=general) let a model answer
        from general knowledge, labelled as not from the documents."""
        general = opts.policy.off_topic == "general"
        yield StageFinished("off topic", timings["off_topic"],
                            why + (": answering from general knowledge" if general else ": not answered"))
        answer = partial(Answer, mode=opts.mode, escalated=False, reasons=(), sources=(), cited=(), grounded=False)
        refused = partial(answer, model="off-topic", model_id="", backend="embedded", prompt_tokens=0,
                          completion_tokens=0, usage_estimated=False, cost_usd=0.0)
        models: dict[Kind, ChatModel | None] = {}
        kind: Kind | None = None
        if general:
            models = {k: await self._models.get(k) for k in ("small", "large")}
            kind = general_knowledge_model(opts.mode, models["small"] is not None, models["large"] is not None)
        if kind is None:
            timings["total"] = self._ms(started)
            suffix = "" if not general else " No model is available to answer from general knowledge."
            yield refused(
                text=f"Your documents do not cover this question, so I have not answered it.{suffix}\n\n"
                     "Ask about something they contain, or add a document that covers it.",
                timings_ms=MappingProxyType(dict(timings)),
                note=f"Estimated support {signals.support:.0%}, below the off-topic threshold "
                     f"{opts.policy.off_topic_support:.0%}." + ("" if general else " RAG_OFF_TOPIC=general lets a model "
                     "answer such questions from general knowledge, labelled as not from your documents."),
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
                                      cited_sources(g.text, len(prompt.sources)), incomplete_note(g, kind, opts)))
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
        """The retrieve stage: the question (with the previous one for follow-ups), timed."""
        query = retrieval_query(question, history)
        t = self._clock()
        result = await self._searcher.search(query, opts.top_k, focus)
        timings["retrieve"] = self._ms(t)
        return Retrieved(result, query, timings["retrieve"])

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
        yield ModelFinished(role, generation, opts.cost(kind, generation))

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
        text = extract_answer(question, passages, self._analyzer)
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
        question: str,
    ) -> DraftSignals:
        checked = draft_support(generation.text, prompt.sources, question, self._analyzer)
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
