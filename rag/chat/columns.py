"""The two columns of a side-by-side answer as a value, advanced by pipeline events (pure functions).

The chat renders `props(columns)` into its Compare element a few times a second; the same value comes out
of a finished `Comparison`, so a live view and a restored one show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from rag import markdown as md
from rag.chat.progress import rate
from rag.types import Column, Comparison, ModelFailed, ModelFinished, ModelStarted, PipelineEvent, ReasoningDelta, Role, TokenDelta

Status = Literal["waiting", "streaming", "done", "error", "stopped"]


@dataclass(frozen=True)
class ColumnState:
    """One model's column: its `Column` so far (what it said, then its measurements) and where it stands.

    While it streams, `first_token_ms` and `pieces` are what the chat measured itself (the model's own
    figures replace them when it finishes), so the column shows what its step already shows."""

    column: Column
    status: Status = "waiting"
    started: float | None = None  # the chat's clock, seconds
    first_token_ms: float | None = None
    pieces: int = 0


Columns = dict[Role, ColumnState]


def advance(columns: Columns, event: PipelineEvent, now: float | None = None) -> Columns:
    """The columns after one event of a comparison at `now` (the chat's clock, seconds; events of other
    kinds change nothing)."""
    if isinstance(event, ModelStarted):
        return {**columns, event.role: ColumnState(Column(event.alias, event.model_id), started=now)}
    if not isinstance(event, (TokenDelta, ReasoningDelta, ModelFinished, ModelFailed)):
        return columns
    state = columns.get(event.role)
    if state is None:
        return columns
    c = state.column
    if isinstance(event, (TokenDelta, ReasoningDelta)):
        first = state.first_token_ms
        if first is None and now is not None and state.started is not None:
            first = (now - state.started) * 1000
        grown = replace(c, text=c.text + event.text) if isinstance(event, TokenDelta) else \
            replace(c, reasoning=c.reasoning + event.text)
        state = replace(state, column=grown, status="streaming", first_token_ms=first, pieces=state.pieces + 1)
    elif isinstance(event, ModelFinished):  # the faster model's numbers show while the other still streams
        g = event.generation
        state = replace(state, column=replace(c, text=g.text, reasoning=g.reasoning, generation=g, cost_usd=event.cost_usd),
                        status="done")
    else:
        state = replace(state, column=replace(c, error=event.message), status="error")
    return {**columns, event.role: state}


def stopped(columns: Columns) -> Columns:
    """The columns after the user pressed stop: what had not finished says so, with what it had streamed."""
    return {role: state if state.status in ("done", "error") else replace(state, status="stopped")
            for role, state in columns.items()}


def finished(comparison: Comparison) -> Columns:
    """The columns of a finished comparison."""
    roles: tuple[Role, ...] = ("left", "right")
    return {role: ColumnState(c, "done" if c.error is None else "error") for role, c in zip(roles, comparison.columns)}


def props(columns: Columns, anchor: str = "", sources: int = 0) -> list[dict[str, Any]]:
    """What the Compare element shows, left column first. Each column's `markdown` is its text made safe to
    render (`rag.markdown.safe_answer`: nothing in it loads) with its citations [n] linked to source n of the
    sources list under it (`#{anchor}-{n}`, n up to `sources`), as a single answer's are."""
    shown = []
    for role in sorted(columns, key=lambda r: r != "left"):
        c = columns[role].column
        safe = md.safe_answer(c.text)
        item: dict[str, Any] = {"alias": c.alias, "model_id": c.model_id, "status": columns[role].status, "text": c.text,
                                "markdown": md.link_citations(safe, sources, anchor) if anchor else safe,
                                "reasoning": c.reasoning, "error": c.error, "cited": list(c.cited), "note": c.note}
        if c.generation is not None:
            g = c.generation
            item.update(ttft_ms=g.first_token_ms, total_ms=g.last_token_ms, tokens=g.completion_tokens,
                        tok_s=rate(g), cost=c.cost_usd, estimated=g.usage_estimated)
        elif columns[role].first_token_ms is not None:  # still streaming (or stopped): the chat's own count
            item.update(ttft_ms=columns[role].first_token_ms, tokens=columns[role].pieces, estimated=True)
        shown.append(item)
    return shown
