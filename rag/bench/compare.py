"""`rag compare`: both models on one prompt, side by side: latency, first token, tokens, tokens/s, cost,
and the two answers. Plain (the prompt as it is) or grounded (`--rag`: the chat's own retrieval and
prompt, through `Pipeline.compare`)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Sequence

from rag.errors import RagError
from rag.llm.client import ChatModel, ModelDelta
from rag.answer.options import AnswerOptions
from rag.chat.progress import format_rate, rate
from rag.types import Column, Generation, Kind
from rag.units import format_ms

DEFAULT_PROMPT = "Which port does Ollama use by default, and how does this app find it?"


async def plain_columns(models: Sequence[tuple[Kind, str, ChatModel | None]], prompt: str,
                        options: AnswerOptions) -> tuple[Column, ...]:
    """Both models on the bare prompt, concurrently; a missing or failing model fills its column with why."""
    async def one(kind: Kind, name: str, model: ChatModel | None) -> Column:
        if model is None:
            return Column(name, "", error=f"{name} is not served by any server found")
        generation: Generation | None = None
        try:
            async for item in model.stream([{"role": "user", "content": prompt}], options.max_tokens(kind),
                                            options.temperature):
                if not isinstance(item, ModelDelta):
                    generation = item
        except RagError as exc:
            return Column(model.alias, model.model_id, error=str(exc))
        assert generation is not None, "a stream ends with its Generation"
        return Column(model.alias, model.model_id, generation.text, generation.reasoning, None, generation,
                      options.cost(kind, generation))

    return tuple(await asyncio.gather(*(one(kind, name, model) for kind, name, model in models)))


def compare_json(prompt: str, columns: Sequence[Column], grounded: bool) -> str:
    """One JSON object: the prompt, and per model its figures and answer (or error)."""
    def figures(c: Column) -> dict[str, object]:
        g = c.generation
        return {"model": c.alias, "model_id": c.model_id, "error": c.error, "note": c.note, "answer": c.text,
                "total_ms": round(g.last_token_ms, 1) if g else None,
                "ttft_ms": round(g.first_token_ms, 1) if g else None,
                "prompt_tokens": g.prompt_tokens if g else None, "completion_tokens": g.completion_tokens if g else None,
                "tok_s": rate(g) if g else None, "cost_usd": c.cost_usd, "usage_estimated": g.usage_estimated if g else None}

    return json.dumps({"prompt": prompt, "grounded": grounded, "models": [figures(c) for c in columns]}, indent=2)


def compare_text(columns: Sequence[Column], width: int = 100) -> str:
    """The figures as a table with one column per model, then the answers side by side."""
    half = max((width - 3) // 2, 20)
    rows: list[tuple[str, ...]] = [("", *(c.alias for c in columns))]

    for label, render in (
        ("total", lambda g: format_ms(g.last_token_ms)),
        ("first token", lambda g: format_ms(g.first_token_ms)),
        ("tokens (in + out)", lambda g: f"{g.prompt_tokens} + {g.completion_tokens}" + (" est." if g.usage_estimated else "")),
        ("tokens/s", lambda g: format_rate(rate(g))),
    ):
        rows.append((label, *(render(c.generation) if c.generation else "–" for c in columns)))
    rows.append(("cost (hypothetical)", *(f"${c.cost_usd:.6f}" if c.generation else "–" for c in columns)))
    label_width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{label_width}}  " + "  ".join(f"{v:<{half - label_width // 2}}" for v in r[1:]) for r in rows]
    texts = [textwrap.wrap(c.text if c.error is None else f"ERROR: {c.error}", half) or [""] for c in columns]
    lines += ["", " | ".join(f"{c.alias:<{half}}" for c in columns), "-+-".join("-" * half for _ in columns)]
    for i in range(max(len(t) for t in texts)):
        lines.append(" | ".join(f"{(t[i] if i < len(t) else ''):<{half}}" for t in texts))
    return "\n".join(line.rstrip() for line in lines)
