"""The answering pipeline: retrieve, build the prompt, draft, decide, escalate; an async stream of events.

The chat UI and the CLI are two consumers of the same event stream (`rag.types.PipelineEvent`). The
pipeline owns every timing, measured with an injectable monotonic clock.

Faults degrade rather than fail: if gpt-oss-20b fails after a draft, the draft stands with a note; if
every model fails or none is reachable, the answer is an extract of the retrieved passages, labelled so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from rag.analysis import Analyzer
from rag.config import Settings
from rag.errors import ModelError, ModelUnavailable
from rag.escalation import DraftSignals, Policy, cited_sources, decide, decide_before_draft, refuses
from rag.extractive import extract_answer
from rag.models import ChatModel, ModelDelta
from rag.prompt import Prompt, Turn, build_prompt, retrieval_query
from rag.tokens import Tokenizer
from rag.types import (
    Answer,
    Column,
    Comparison,
    EscalationDecided,
    Generation,
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
    TokenDelta,
)

Mode = Literal["auto", "small", "large"]
Kind = Literal["small", "large"]
Clock = Callable[[], float]


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


@dataclass(frozen=True)
class AnswerOptions:
    """Per-answer knobs (chat settings can change them between messages)."""

    mode: Mode = "auto"
    top_k: int = 5
    temperature: float = 0.2
    small_max_tokens: int = 512
    large_max_tokens: int = 2048
    context_tokens: int = 6000
    history_turns: int = 3
    policy: Policy = field(default_factory=Policy)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> USD per 1M (in, out)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerOptions:
        """The options the settings describe."""
        return cls(
            mode=settings.mode,
            top_k=settings.top_k,
            temperature=settings.temperature,
            small_max_tokens=settings.small_max_tokens,
            large_max_tokens=settings.large_max_tokens,
            context_tokens=settings.context_tokens,
            history_turns=settings.history_turns,
            policy=Policy.from_settings(settings),
            prices={
                "small": (settings.small_price_in, settings.small_price_out),
                "large": (settings.large_price_in, settings.large_price_out),
            },
        )

    def cost(self, kind: Kind, generation: Generation) -> float:
        """Estimated USD for one generation at the configured (hypothetical) prices."""
        price_in, price_out = self.prices.get(kind, (0.0, 0.0))
        return (generation.prompt_tokens * price_in + generation.completion_tokens * price_out) / 1_000_000


@dataclass
class _Outcome:
    generation: Generation | None = None
    error: ModelError | None = None
    finished: ModelFinished | None = None  # set with `generation`; carries its cost


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

    async def run(
        self,
        question: str,
        history: Sequence[Turn] = (),
        options: AnswerOptions | None = None,
        focus: frozenset[str] | None = None,
    ) -> AsyncIterator[PipelineEvent]:
        """Answer `question`; yields progress events and ends with exactly one `Answer`.

        `focus` restricts retrieval to those documents (files attached to this message).
        """
        opts = options or AnswerOptions()
        started = self._clock()
        timings: dict[str, float] = {}

        retrieved = await self._retrieve(question, history, opts, focus, timings)
        yield retrieved
        result = retrieved.result

        small = await self._models.get("small") if opts.mode in ("auto", "small") else None
        large = await self._models.get("large") if opts.mode in ("auto", "large") else None
        if small is None and large is None:
            wanted = {"auto": "no model server answered", "small": "the small model is not available",
                      "large": "the large model is not available"}[opts.mode]
            async for event in self._extractive(question, result, opts, timings, started, wanted):
                yield event
            return

        prompt, built = self._prompt(question, result, history, opts, timings)
        yield built

        # 1. In auto mode, hopeless retrieval skips the draft and goes straight to the large model.
        skip_draft = False
        reasons: tuple[str, ...] = ()
        if opts.mode == "auto" and small is not None and large is not None and not focus:
            t = self._clock()
            early = decide_before_draft(result.signals, opts.policy)
            if early.escalate:
                timings["escalate"] = self._ms(t)
                skip_draft, reasons = True, early.reasons
                yield EscalationDecided(True, reasons, large.alias, True, timings["escalate"])

        # 2. The small model answers (a draft in auto mode).
        draft: _Outcome | None = None
        if small is not None and not skip_draft:
            draft = _Outcome()
            role: Role = "draft" if opts.mode == "auto" else "final"
            async for event in self._generate(role, "small", small, prompt, opts.small_max_tokens, opts, draft, timings):
                yield event

        # 3. Decide whether the large model answers.
        notes: list[str] = []
        use_large = opts.mode == "large" or skip_draft
        if draft is not None and draft.generation is not None:
            t = self._clock()
            verdict = decide(replace(self._signals(draft.generation, prompt, result), chosen_sources=bool(focus)), opts.policy)
            timings["escalate"] = self._ms(t)
            applied = opts.mode == "auto" and large is not None
            if verdict.escalate or opts.mode == "auto":
                target = large.alias if large is not None else "the large model"
                yield EscalationDecided(verdict.escalate, verdict.reasons, target, False, timings["escalate"], applied)
            if verdict.escalate and applied:
                use_large, reasons = True, verdict.reasons
            elif verdict.escalate and opts.mode == "auto":
                notes.append(f"Not improved: the large model is not available ({'; '.join(verdict.reasons)}).")
        elif opts.mode == "auto" and large is not None and not skip_draft:
            failure = draft.error.reason if draft is not None and draft.error else "not available"
            reasons = (f"{small.alias if small else 'the small model'} {'failed: ' if draft else 'is '}{failure}",)
            use_large = True
            yield EscalationDecided(True, reasons, large.alias, False, 0.0)

        # 4. The large model answers; on failure the draft stands, or the small model steps in.
        final = draft if draft is not None and draft.generation is not None else None
        final_kind: Kind = "small"
        failures = [draft.error] if draft is not None and draft.error is not None else []
        if use_large and large is not None:
            outcome = _Outcome()
            async for event in self._generate("final", "large", large, prompt, opts.large_max_tokens, opts, outcome, timings):
                yield event
            if outcome.generation is not None:
                final, final_kind = outcome, "large"
            else:
                failures.append(outcome.error)  # type: ignore[arg-type]
                why = outcome.error.reason if outcome.error else "unknown error"
                if final is not None:
                    notes.append(f"Not improved: {large.alias} failed ({why}); this is {small.alias if small else 'the small model'}'s draft.")
                elif skip_draft and small is not None:
                    fallback = _Outcome()
                    async for event in self._generate("final", "small", small, prompt, opts.small_max_tokens, opts, fallback, timings):
                        yield event
                    if fallback.generation is not None:
                        final, final_kind = fallback, "small"
                        notes.append(f"{large.alias} failed ({why}); answered by {small.alias} instead.")
                    elif fallback.error is not None:
                        failures.append(fallback.error)

        # 5. Nothing answered: quote the documents instead.
        if final is None or final.generation is None:
            why = "; ".join(str(e) for e in failures if e is not None) or "no model answered"
            async for event in self._extractive(question, result, opts, timings, started, why):
                yield event
            return

        generation = final.generation
        # Every completed request counts (an escalated answer: the draft and the large model's answer).
        runs = tuple(o.finished for o in ((final,) if draft is final else (draft, final)) if o and o.finished)
        timings["total"] = self._ms(started)
        yield Answer(
            text=generation.text,
            model=generation.alias,
            model_id=generation.model_id,
            backend=generation.endpoint,
            mode=opts.mode,
            escalated=final_kind == "large" and opts.mode == "auto",
            reasons=reasons if final_kind == "large" else (),
            sources=numbered(prompt.sources),
            cited=cited_sources(generation.text, len(prompt.sources)),
            timings_ms=timings,
            prompt_tokens=sum(r.generation.prompt_tokens for r in runs),
            completion_tokens=sum(r.generation.completion_tokens for r in runs),
            usage_estimated=any(r.generation.usage_estimated for r in runs),
            cost_usd=sum(r.cost_usd for r in runs),
            draft=draft.generation.text if draft is not None and draft is not final and draft.generation else None,
            reasoning=generation.reasoning,
            note=" ".join(notes) or None,
            runs=runs,
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

        plan: list[tuple[Role, Kind, int]] = [("left", "small", opts.small_max_tokens), ("right", "large", opts.large_max_tokens)]
        models = {role: await self._models.get(kind) for role, kind, _ in plan}
        outcomes = {role: _Outcome() for role, _, _ in plan}
        queue: asyncio.Queue[PipelineEvent | None] = asyncio.Queue()

        async def pump(role: Role, kind: Kind, max_tokens: int) -> None:
            model = models[role]
            try:
                if model is not None:
                    async for event in self._generate(role, kind, model, prompt, max_tokens, opts, outcomes[role], timings):
                        await queue.put(event)
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(role, kind, n)) for role, kind, n in plan]
        try:
            pending = len(tasks)
            while pending:
                event = await queue.get()
                if event is None:
                    pending -= 1
                else:
                    yield event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        columns = []
        for role, kind, _ in plan:
            outcome, model = outcomes[role], models[role]
            alias = model.alias if model is not None else ("the small model" if kind == "small" else "the large model")
            if outcome.generation is not None:
                g = outcome.generation
                cost = outcome.finished.cost_usd if outcome.finished else 0.0
                columns.append(Column(g.alias, g.model_id, g.text, g.reasoning, None, g, cost,
                                      cited_sources(g.text, len(prompt.sources))))
            else:
                error = str(outcome.error) if outcome.error else f"{alias} is not available (no server serves it)"
                columns.append(Column(alias, model.model_id if model else "", outcome.error.partial if outcome.error else "", error=error))
        timings["total"] = self._ms(started)
        yield Comparison(question, tuple(columns), numbered(prompt.sources), timings)

    async def _retrieve(
        self, question: str, history: Sequence[Turn], opts: AnswerOptions, focus: frozenset[str] | None,
        timings: dict[str, float],
    ) -> Retrieved:
        """The retrieve stage: the question (with the previous one for follow-ups), timed."""
        query = retrieval_query(question, history)
        t = self._clock()
        result = await self._searcher.search(query, opts.top_k, focus) if focus else await self._searcher.search(query, opts.top_k)
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
        model: ChatModel,
        prompt: Prompt,
        max_tokens: int,
        opts: AnswerOptions,
        outcome: _Outcome,
        timings: dict[str, float],
    ) -> AsyncIterator[PipelineEvent]:
        """Stream one model's answer as events; the result lands in `outcome`."""
        yield ModelStarted(role, model.alias, model.model_id, model.endpoint)
        try:
            async for item in model.stream(prompt.messages, max_tokens, opts.temperature):
                if isinstance(item, ModelDelta):
                    cls = TokenDelta if item.kind == "answer" else ReasoningDelta
                    yield cls(role, model.alias, item.text)
                else:
                    outcome.generation = item
        except ModelError as exc:
            outcome.error = exc
            if isinstance(exc, ModelUnavailable):
                self._models.report_unavailable(kind)
            yield ModelFailed(role, model.alias, str(exc), exc.partial)
            return
        generation = outcome.generation
        assert generation is not None
        timings[f"{role}_first_token"] = round(generation.first_token_ms, 1)
        timings[f"{role}_generation"] = round(generation.generation_ms, 1)
        outcome.finished = ModelFinished(role, generation, opts.cost(kind, generation))
        yield outcome.finished

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
            timings_ms=timings,
            prompt_tokens=0,
            completion_tokens=0,
            usage_estimated=False,
            cost_usd=0.0,
            note=why,
        )

    def _signals(self, generation: Generation, prompt: Prompt, result: SearchResult) -> DraftSignals:
        return DraftSignals(
            retrieval=result.signals,
            answer_tokens=self._tokenizer.count(generation.text),
            refuses=refuses(generation.text),
            cites_source=bool(cited_sources(generation.text, len(prompt.sources))),
            mean_logprob=generation.mean_logprob,
            sources=len(prompt.sources),
        )

    def _ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000, 3)


def numbered(passages: Sequence[Passage]) -> tuple[SourceRef, ...]:
    """Passages as the sources [1], [2], ... the prompt and the answer cite."""
    return tuple(SourceRef(i, p) for i, p in enumerate(passages, start=1))


class DirectoryModels:
    """A ModelProvider backed by discovery (rag.discovery.ModelDirectory)."""

    def __init__(self, directory: object) -> None:
        from rag.discovery import ModelDirectory

        assert isinstance(directory, ModelDirectory)
        self._directory = directory

    async def get(self, kind: Kind) -> ChatModel | None:
        """The resolved model for a kind, or None."""
        resolved = (await self._directory.resolve()).get(kind)
        return self._directory.model(resolved) if resolved else None

    def report_unavailable(self, kind: Kind) -> None:
        """Re-discover on the next request."""
        self._directory.invalidate()


def with_mode(options: AnswerOptions, mode: Mode) -> AnswerOptions:
    """The same options in another mode."""
    return replace(options, mode=mode)
