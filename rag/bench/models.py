"""`rag bench models`: latency, first token and decode speed of each model, measured without the flaws of
the workshop's script (FACTS.md): tokens/s counts completion tokens over decode time only, the first
token comes from the same streamed request, and p95 is a nearest-rank percentile, never above the max.

One warm-up request per model (not counted), then N rounds, models interleaved round by round so that a
busy moment of the machine does not land on one model only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean

from rag.errors import RagError
from rag.llm.client import ChatModel, ModelDelta, OpenAICompatibleModel
from rag.types import Generation

DEFAULT_PROMPT = "In two sentences: why does a small local model answer faster than a large one?"


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-th percentile by the nearest-rank method: always one of the values, never above the max."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


@dataclass
class ModelRuns:
    """Every measured request of one model."""

    name: str
    model_id: str
    totals_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelReport:
    """One model's figures; ttft_ms_mean is None without streaming (the whole answer arrives at once)."""

    model: str
    model_id: str
    rounds: int
    ok: int
    errors: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    ttft_ms_mean: float | None
    tok_s: float
    prompt_tokens: float
    completion_tokens: float
    error_messages: tuple[str, ...] = ()


def summarise(runs: ModelRuns, rounds: int, stream: bool) -> ModelReport:
    """The figures of one model's runs."""
    totals = runs.totals_ms

    def mean(values: Sequence[float]) -> float:
        return round(fmean(values), 1) if values else 0.0

    return ModelReport(
        model=runs.name, model_id=runs.model_id, rounds=rounds, ok=len(totals), errors=len(runs.errors),
        mean_ms=mean(totals), p50_ms=round(nearest_rank(totals, 50), 1), p95_ms=round(nearest_rank(totals, 95), 1),
        max_ms=round(max(totals), 1) if totals else 0.0,
        ttft_ms_mean=mean(runs.ttfts_ms) if stream and runs.ttfts_ms else None,
        tok_s=mean([r for r in runs.rates if r > 0]),
        prompt_tokens=mean(runs.prompt_tokens), completion_tokens=mean(runs.completion_tokens),
        error_messages=tuple(dict.fromkeys(runs.errors)),
    )


async def _one(model: ChatModel | OpenAICompatibleModel, prompt: str, max_tokens: int, stream: bool,
               clock: Callable[[], float]) -> tuple[Generation, float]:
    messages = [{"role": "user", "content": prompt}]
    started = clock()
    if not stream and isinstance(model, OpenAICompatibleModel):
        return await model.complete(messages, max_tokens, 0.0), (clock() - started) * 1000
    generation: Generation | None = None
    async for item in model.stream(messages, max_tokens, 0.0):
        if not isinstance(item, ModelDelta):
            generation = item
    assert generation is not None, "a stream ends with its Generation"
    return generation, (clock() - started) * 1000


async def run_models_bench(
    models: Sequence[tuple[str, ChatModel | OpenAICompatibleModel]],
    rounds: int,
    prompt: str = DEFAULT_PROMPT,
    stream: bool = True,
    max_tokens: int = 256,
    progress: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[ModelReport]:
    """Warm each model up once, then `rounds` measured requests each, interleaved."""
    runs = {name: ModelRuns(name, model.model_id) for name, model in models}
    for round_number in range(rounds + 1):
        for name, model in models:
            try:
                generation, total = await _one(model, prompt, max_tokens, stream, clock)
            except RagError as exc:
                if round_number:
                    runs[name].errors.append(str(exc))
            else:
                if round_number:  # round 0 warms up connections and the server's caches
                    record = runs[name]
                    record.totals_ms.append(total)
                    record.ttfts_ms.append(generation.first_token_ms)
                    record.rates.append(generation.tokens_per_s)
                    record.prompt_tokens.append(generation.prompt_tokens)
                    record.completion_tokens.append(generation.completion_tokens)
            progress()
    return [summarise(runs[name], rounds, stream) for name, _ in models]


def report_json(reports: list[ModelReport]) -> str:
    """{"models": {name: {ttft_ms_mean, p50_ms, p95_ms, max_ms, tok_s, errors, ...}}}."""
    return json.dumps({"models": {r.model: {k: v for k, v in asdict(r).items() if k != "model"} for r in reports}}, indent=2)


def report_csv(reports: list[ModelReport]) -> str:
    """One row per model."""
    out = io.StringIO()
    columns = [f for f in ModelReport.__dataclass_fields__ if f != "error_messages"]
    writer = csv.writer(out)
    writer.writerow(columns)
    for report in reports:
        writer.writerow([getattr(report, c) if getattr(report, c) is not None else "" for c in columns])
    return out.getvalue()


def report_text(reports: list[ModelReport]) -> str:
    """A table, then any errors."""
    lines = [f"{'model':<24} {'ok':>4} {'err':>4} {'mean':>9} {'p50':>9} {'p95':>9} {'max':>9} {'ttft':>9} {'tok/s':>7} {'in':>6} {'out':>6}"]
    for r in reports:
        ttft = f"{r.ttft_ms_mean:.0f} ms" if r.ttft_ms_mean is not None else "–"
        lines.append(f"{r.model[:24]:<24} {r.ok:>4} {r.errors:>4} {r.mean_ms:>6.0f} ms {r.p50_ms:>6.0f} ms "
                     f"{r.p95_ms:>6.0f} ms {r.max_ms:>6.0f} ms {ttft:>9} {r.tok_s:>7.1f} {r.prompt_tokens:>6.0f} "
                     f"{r.completion_tokens:>6.0f}")
    for r in reports:
        lines += [f"{r.model}: {message}" for message in r.error_messages]
    return "\n".join(lines)
