"""The two columns of a side-by-side answer as a value, advanced by pipeline events (pure functions).

The chat renders `props(columns)` into its Compare element a few times a second; the same value comes out
of a finished `Comparison`, so a live view and a restored one show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from rag.progress import rate
from rag.types import Comparison, Generation, ModelFailed, ModelFinished, ModelStarted, PipelineEvent, ReasoningDelta, Role, TokenDelta

Status = Literal["waiting", "streaming", "done", "error"]


@dataclass(frozen=True)
class ColumnState:
    """One model's column: what it has said so far and, once done, its measurements."""

    alias: str
    model_id: str
    status: Status = "waiting"
    text: str = ""
    reasoning: str = ""
    error: str | None = None
    generation: Generation | None = None
    cost_usd: float = 0.0
    cited: tuple[int, ...] = ()


Columns = dict[Role, ColumnState]


def advance(columns: Columns, event: PipelineEvent) -> Columns:
    """The columns after one event of a comparison (events of other kinds change nothing)."""
    if isinstance(event, ModelStarted):
        return {**columns, event.role: ColumnState(event.alias, event.model_id)}
    if not isinstance(event, (TokenDelta, ReasoningDelta, ModelFinished, ModelFailed)):
        return columns
    column = columns.get(event.role)
    if column is None:
        return columns
    if isinstance(event, TokenDelta):
        column = replace(column, status="streaming", text=column.text + event.text)
    elif isinstance(event, ReasoningDelta):
        column = replace(column, status="streaming", reasoning=column.reasoning + event.text)
    elif isinstance(event, ModelFinished):  # the faster model's numbers show while the other still streams
        g = event.generation
        column = replace(column, status="done", text=g.text, reasoning=g.reasoning, generation=g, cost_usd=event.cost_usd)
    else:
        column = replace(column, status="error", error=event.message)
    return {**columns, event.role: column}


def finished(comparison: Comparison) -> Columns:
    """The columns of a finished comparison."""
    roles: tuple[Role, ...] = ("left", "right")
    return {
        role: ColumnState(c.alias, c.model_id, "done" if c.error is None else "error", c.text, c.reasoning, c.error,
                          c.generation, c.cost_usd, c.cited)
        for role, c in zip(roles, comparison.columns)
    }


def props(columns: Columns) -> list[dict[str, Any]]:
    """What the Compare element shows, left column first."""
    shown = []
    for role in sorted(columns, key=lambda r: r != "left"):
        c = columns[role]
        item: dict[str, Any] = {"alias": c.alias, "model_id": c.model_id, "status": c.status, "text": c.text,
                                "reasoning": c.reasoning, "error": c.error, "cited": list(c.cited)}
        if c.generation is not None:
            g = c.generation
            item.update(ttft_ms=g.first_token_ms, total_ms=g.last_token_ms, tokens=g.completion_tokens,
                        tok_s=rate(g), cost=c.cost_usd, estimated=g.usage_estimated)
        shown.append(item)
    return shown
