"""A conversation as a file to keep or share: Markdown to read, JSON to process. Used by the chat's
`/export` command and by `rag export`; both render the same stored `Conversation`."""

from __future__ import annotations

import json
import re
from typing import Any

from rag.chat.conversation import Conversation, Exchange, to_dict
from rag.units import format_ms

# The pipeline's stages first; then each model request's first token and generation, in answer order.
STAGES = ("retrieve", "build_prompt", "escalate", "total")


def _timings(timings: dict[str, float]) -> str:
    ordered = [k for k in STAGES if k in timings] + [k for k in timings if k not in STAGES]
    return ", ".join(f"{k.replace('_', ' ')} {format_ms(timings[k])}" for k in ordered)


def _exchange(number: int, e: Exchange) -> list[str]:
    lines = [f"## {number}. {_one_line(e.question)}", "", e.answer.strip() or "*(no answer)*", ""]
    if e.cited:
        lines.append("**Sources**")
        lines.append("")
        # "[3]" as the answer says it, not "3.": every Markdown viewer renumbers an ordered list 1, 2, ...,
        # and [3] in the answer then pointed at the wrong source (issue 26).
        lines += [f"- \\[{c.number}\\] {c.location} (`{c.source}`, chunk {c.chunk})" for c in e.cited]
        lines.append("")
    facts = [f"model: {e.model}", f"mode: {e.mode}"]
    if e.escalated:
        facts.append("escalated: " + ("; ".join(e.reasons) if e.reasons else "yes"))
    elif e.reasons:
        facts.append("escalation not applied: " + "; ".join(e.reasons))
    if e.tokens:
        facts.append(f"tokens: {e.tokens}")
    if e.cost_usd:
        facts.append(f"cost: ${e.cost_usd:.6f} (hypothetical)")
    if e.timings_ms:
        facts.append(f"timings: {_timings(e.timings_ms)}")
    if e.at:
        facts.append(f"answered: {e.at}")
    lines += [f"- {f}" for f in facts]
    lines.append("")
    return lines


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def to_markdown(conversation: Conversation, title: str = "Conversation", meta: dict[str, str] | None = None) -> str:
    """The whole conversation: each question, its answer, numbered sources with their locations, the
    model, mode, escalation reasons, tokens, cost and timings."""
    lines = [f"# {_one_line(title) or 'Conversation'}", ""]
    if meta:
        lines += [*(f"- {k}: {v}" for k, v in meta.items()), ""]
    for number, exchange in enumerate(conversation.exchanges, 1):
        lines += _exchange(number, exchange)
    if not conversation.exchanges:
        lines.append("*No questions answered yet.*")
    return "\n".join(lines).rstrip() + "\n"


def to_json(conversation: Conversation, title: str = "Conversation", meta: dict[str, str] | None = None) -> str:
    data: dict[str, Any] = {"title": title, **(meta or {}), "conversation": to_dict(conversation)}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def file_stem(title: str, limit: int = 48) -> str:
    """A safe file name from a conversation's title, cut at a word."""
    stem = re.sub(r"[^\w.-]+", "-", title.strip(), flags=re.UNICODE).strip("-.")
    if len(stem) > limit:
        head = stem[:limit + 1]
        stem = head.rsplit("-", 1)[0] if "-" in head[1:] else stem[:limit]
    return stem.strip("-.") or "conversation"
