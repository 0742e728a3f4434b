"""In-process fakes for pipeline tests: a clock you move by hand, a searcher, models and a provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from rag.errors import ModelError
from rag.index.analysis import Analyzer
from rag.llm.client import ChatModel, ModelDelta
from rag.types import Chunk, Generation, Kind, Passage, SearchResult, SupportSignals


class FakeClock:
    """Seconds; moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1000


def passages(*texts: str) -> tuple[Passage, ...]:
    return tuple(
        Passage(Chunk(f"doc{i}.md", 0, text, 0, len(text), f"Doc {i}", heading=f"Doc {i}"), 10.0 - i, i)
        for i, text in enumerate(texts, start=1)
    )


STRONG = SupportSignals(9.0, 4.0, 5.0, 0.55, 1.0, 0.95, 3, ("ollama", "port", "default"), support=0.9)
HOPELESS = SupportSignals(1.0, 0.9, 0.1, 0.1, 0.2, 0.05, 5, ("port",), support=0.1)


@dataclass
class FakeSearcher:
    clock: FakeClock
    found: tuple[Passage, ...] = field(default_factory=lambda: passages("Ollama listens on port 11434 by default."))
    signals: SupportSignals = STRONG
    ms: float = 8.0
    queries: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)  # the previous question each query was searched with

    sources_asked: list[frozenset[str] | None] = field(default_factory=list)

    async def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        self.queries.append(query)
        self.earlier.append(earlier)
        self.sources_asked.append(sources)
        self.clock.advance_ms(self.ms)
        found = self.found if sources is None else tuple(p for p in self.found if p.chunk.source in sources)
        return SearchResult(query, found[:k], self.signals, tuple(Analyzer().query_terms(query)))  # as a real index analyses


@dataclass
class FakeModel:
    alias: str
    clock: FakeClock
    text: str = "Ollama listens on port 11434 by default, as the documentation states [1]."
    reasoning: str = ""
    ttft_ms: float = 300.0
    per_token_ms: float = 20.0
    error: ModelError | None = None
    error_after_tokens: int = 0
    prompt_tokens: int = 500
    model_id: str = ""
    endpoint: str = "http://fake/v1"
    finish_reason: str | None = "stop"  # None: the stream ended without one (a cut connection)
    calls: list[Sequence[dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model_id = self.model_id or self.alias

    async def stream(self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float,
                     logprobs: bool = False, seed: int | None = None) -> AsyncIterator[ModelDelta | Generation]:
        """Scripted: the text word by word on the fake clock, optionally failing after some tokens."""
        self.calls.append(messages)
        start = self.clock()
        words = self.text.split(" ")
        self.clock.advance_ms(self.ttft_ms)
        if self.error is not None and self.error_after_tokens == 0:
            raise self.error
        if self.reasoning:
            yield ModelDelta("reasoning", self.reasoning)
        for i, word in enumerate(words):
            await asyncio.sleep(0)  # a real stream awaits the network between tokens
            if i:
                self.clock.advance_ms(self.per_token_ms)
            if self.error is not None and i == self.error_after_tokens:
                raise self.error
            yield ModelDelta("answer", word + (" " if i < len(words) - 1 else ""))
        first = self.ttft_ms
        last = (self.clock() - start) * 1000
        yield Generation(self.alias, self.model_id, self.endpoint, self.text, self.reasoning, self.prompt_tokens,
                         len(words), False, first, last, (len(words) - 1) / ((last - first) / 1000) if last > first else 0.0,
                         finish_reason=self.finish_reason)


@dataclass
class FakeProvider:
    small: FakeModel | None
    large: FakeModel | None
    unavailable_reports: list[str] = field(default_factory=list)
    found_problems: tuple[str, ...] = ()

    async def get(self, kind: Kind) -> ChatModel | None:
        return self.small if kind == "small" else self.large

    def report_unavailable(self, kind: Kind) -> None:
        self.unavailable_reports.append(kind)

    def problems(self) -> tuple[str, ...]:
        return self.found_problems
