"""A chat's conversation as one value: its exchanges, the settings it chose, what each answer cited.

The chat keeps one `Conversation` per session and replaces it after each answer with the pure functions
below; history (persisting and resuming a chat) stores and restores exactly this value (`to_dict`,
`from_dict`). The rules live here, not in the handlers: which turns are remembered, how a side-by-side
turn is remembered, and how many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from rag.answer.options import AnswerOptions, ChatChoices
from rag.answer.prompt import Turn
from rag.types import Answer, Comparison, Generation, ModelFinished, SourceRef

# Exchanges offered to follow-ups; the prompt uses only the last few (RAG_HISTORY_TURNS) that fit its
# budget. Every exchange is kept (history and export show them all).
MAX_REMEMBERED = 20
FORMAT_VERSION = 2


@dataclass(frozen=True)
class CitedSource:
    """A source an answer cited, by its provenance (not its number, which is per answer)."""

    number: int
    source: str
    chunk: int
    location: str


@dataclass(frozen=True)
class Exchange:
    """One question and the answer remembered for it."""

    question: str
    answer: str  # the text follow-ups see; a side-by-side turn holds both answers, each labelled
    mode: str  # auto | small | large | compare
    model: str  # the answering model's alias, "extractive", or "a vs b"
    cited: tuple[CitedSource, ...] = ()
    escalated: bool = False
    reasons: tuple[str, ...] = ()  # why the policy escalated (or would have)
    timings_ms: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    tokens: int = 0  # prompt + completion, every model request of the answer
    at: str = ""  # when it was answered, ISO 8601 UTC


@dataclass(frozen=True)
class Conversation:
    """Everything a chat remembers between messages."""

    exchanges: tuple[Exchange, ...] = ()
    choices: ChatChoices = field(default_factory=ChatChoices)

    def turns(self) -> tuple[Turn, ...]:
        """The earlier exchanges as prompt turns, oldest first (the last MAX_REMEMBERED)."""
        return tuple(Turn(e.question, e.answer) for e in self.exchanges[-MAX_REMEMBERED:])

    def options(self, base: AnswerOptions) -> AnswerOptions:
        """Options for the next answer: `base` with this chat's choices applied."""
        return self.choices.options(base)

    @property
    def side_by_side(self) -> bool:
        """The next question is answered by both models in two columns."""
        return self.choices.side_by_side


def start(options: AnswerOptions) -> Conversation:
    """A new chat, with the choices the settings give."""
    return Conversation((), ChatChoices.of(options))


def choose(conversation: Conversation, values: dict[str, Any]) -> Conversation:
    """The conversation after the user confirmed chat settings `values` (clamped; see ChatChoices)."""
    return replace(conversation, choices=conversation.choices.updated(values))


def remember_answer(conversation: Conversation, question: str, answer: Answer, at: str = "") -> Conversation:
    """The conversation after `answer`."""
    exchange = Exchange(question, answer.text, answer.mode, answer.model, _cited(answer.sources, answer.cited),
                        answer.escalated, answer.reasons, _timings(answer.timings_ms, answer.runs), answer.cost_usd,
                        answer.prompt_tokens + answer.completion_tokens, at)
    return _append(conversation, exchange)


def remember_stopped(conversation: Conversation, question: str, shown: str, at: str = "") -> Conversation:
    """The conversation after the user stopped the answer to `question`, `shown` being what had streamed.

    The question is remembered all the same: the user asked it and may follow it up ("shorter please",
    "and which port does it use?"), and a follow-up is read and searched against the previous question.
    """
    answer = f"{shown.strip()}\n\n(stopped)" if shown.strip() else "(stopped before any answer)"
    mode = "compare" if conversation.side_by_side else conversation.choices.mode
    return _append(conversation, Exchange(question, answer, mode, "stopped", at=at))


def remember_comparison(conversation: Conversation, question: str, comparison: Comparison, at: str = "") -> Conversation:
    """The conversation after a side-by-side turn: both answers, each labelled with its model.

    A column that failed is left out; if both failed, nothing is remembered (a follow-up would otherwise
    refer to an answer the user never saw).
    """
    answered = [c for c in comparison.columns if c.text and not c.error]
    if not answered:
        return conversation
    text = "\n\n".join(f"{c.alias}: {c.text}" for c in answered)
    cited = sorted({n for c in answered for n in c.cited})
    tokens = sum(c.generation.prompt_tokens + c.generation.completion_tokens for c in answered if c.generation)
    exchange = Exchange(question, text, "compare", " vs ".join(c.alias for c in comparison.columns),
                        _cited(comparison.sources, tuple(cited)),
                        timings_ms=_timings(comparison.timings_ms, [c.generation for c in answered if c.generation]),
                        cost_usd=sum(c.cost_usd for c in comparison.columns), tokens=tokens, at=at)
    return _append(conversation, exchange)


def to_dict(conversation: Conversation) -> dict[str, Any]:
    """A JSON-ready form of the conversation."""
    return {"version": FORMAT_VERSION, **asdict(conversation)}


def from_dict(data: dict[str, Any]) -> Conversation:
    """A conversation from `to_dict` output; unknown keys are ignored and bad choices fall back to defaults."""
    exchanges = []
    for item in data.get("exchanges", ()):
        cited = tuple(CitedSource(**_known(CitedSource, c)) for c in item.get("cited", ()))
        known = _known(Exchange, item)
        exchanges.append(Exchange(**{**known, "cited": cited, "reasons": tuple(known.get("reasons", ())),
                                     "timings_ms": dict(known.get("timings_ms") or {})}))
    choices = ChatChoices().updated(data.get("choices") or {})
    return Conversation(tuple(exchanges), choices)


def _append(conversation: Conversation, exchange: Exchange) -> Conversation:
    return replace(conversation, exchanges=(*conversation.exchanges, exchange))


def _timings(stages: Mapping[str, float], runs: Iterable[ModelFinished | Generation]) -> dict[str, float]:
    """The pipeline's stage timings, then each model request's first token and generation time."""
    timings = dict(stages)
    for run in runs:
        gen = run.generation if isinstance(run, ModelFinished) else run
        timings[f"{gen.alias} first token"] = gen.first_token_ms
        timings[f"{gen.alias} generation"] = gen.generation_ms
    return timings


def _cited(sources: tuple[SourceRef, ...], numbers: tuple[int, ...]) -> tuple[CitedSource, ...]:
    by_number = {ref.number: ref for ref in sources}
    return tuple(
        CitedSource(n, by_number[n].passage.chunk.source, by_number[n].passage.chunk.index, by_number[n].passage.chunk.location)
        for n in numbers if n in by_number
    )


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
