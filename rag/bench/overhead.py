"""`rag bench overhead`: what the pipeline adds to a bare OpenAI client call, measured in one run.

Both stream the same reply from the fake OpenAI-compatible server (fixed time to first token, fixed token
rate), interleaved run by run so machine noise hits both alike. The pipeline's times exclude retrieval
(reported separately): what remains is prompt building, discovery and the client layer.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, replace

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from rag.fakes.openai_server import FakeOpenAIServer, Reply
from rag.config import Settings
from rag.metrics import percentile
from rag.answer.options import AnswerOptions
from rag.runtime import Services, build_services
from rag.types import Answer, TokenDelta


@dataclass(frozen=True)
class OverheadReport:
    """p50/p95 in ms; `added_*` are pipeline minus bare client at p50."""

    runs: int
    tokens: int
    server_ttft_ms: float
    server_rate_tok_s: float
    bare_ttft_p50_ms: float
    bare_ttft_p95_ms: float
    pipeline_ttft_p50_ms: float
    pipeline_ttft_p95_ms: float
    added_ttft_p50_ms: float
    bare_total_p50_ms: float
    pipeline_total_p50_ms: float
    added_total_p50_ms: float
    bare_tok_s_p50: float
    pipeline_tok_s_p50: float
    retrieve_p50_ms: float
    tokens_received_bare: int
    tokens_received_pipeline: int


async def _bare(client: AsyncOpenAI, model: str, messages: list[ChatCompletionMessageParam]) -> tuple[float, float, float, int]:
    start = time.perf_counter()
    first = last = None
    count = 0
    stream = await client.chat.completions.create(model=model, messages=messages, stream=True, max_tokens=4096)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
    assert first is not None and last is not None
    return (first - start) * 1000, (last - start) * 1000, (count - 1) / (last - first) if last > first else 0.0, count


async def run_overhead_bench(settings: Settings, runs: int, tokens: int, ttft_ms: float, rate: float) -> OverheadReport:
    """Interleave `runs` bare calls and pipeline answers against a paced fake server."""
    reply = Reply(content=[f"tok{i} " for i in range(tokens)], delay_first=ttft_ms / 1000, delay_between=1 / rate)
    with FakeOpenAIServer([settings.small_model], {settings.small_model: reply}) as server:
        services = build_services(replace_settings(settings, server.url))
        options = replace(services.options, mode="small")
        await services.retriever.refresh()
        client = AsyncOpenAI(base_url=server.url, api_key="not-needed", max_retries=0)
        question = "Which port does Ollama use?"
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": question}]
        bare: list[tuple[float, float, float, int]] = []
        piped: list[tuple[float, float, float, int, float]] = []
        try:
            for i in range(runs + 1):  # the first round warms connections and caches; not counted
                b = await _bare(client, settings.small_model, messages)
                p = await _pipeline(services, question, options)
                if i:
                    bare.append(b)
                    piped.append(p)
        finally:
            await client.close()
            await services.aclose()

    def p50(values: list[float]) -> float:
        return round(percentile(values, 50), 2)

    return OverheadReport(
        runs=runs,
        tokens=tokens,
        server_ttft_ms=ttft_ms,
        server_rate_tok_s=rate,
        bare_ttft_p50_ms=p50([b[0] for b in bare]),
        bare_ttft_p95_ms=round(percentile([b[0] for b in bare], 95), 2),
        pipeline_ttft_p50_ms=p50([p[0] for p in piped]),
        pipeline_ttft_p95_ms=round(percentile([p[0] for p in piped], 95), 2),
        added_ttft_p50_ms=round(p50([p[0] for p in piped]) - p50([b[0] for b in bare]), 2),
        bare_total_p50_ms=p50([b[1] for b in bare]),
        pipeline_total_p50_ms=p50([p[1] for p in piped]),
        added_total_p50_ms=round(p50([p[1] for p in piped]) - p50([b[1] for b in bare]), 2),
        bare_tok_s_p50=p50([b[2] for b in bare]),
        pipeline_tok_s_p50=p50([p[2] for p in piped]),
        retrieve_p50_ms=p50([p[4] for p in piped]),
        tokens_received_bare=min(b[3] for b in bare),
        tokens_received_pipeline=min(p[3] for p in piped),
    )


async def _pipeline(services: Services, question: str, options: AnswerOptions) -> tuple[float, float, float, int, float]:
    start = time.perf_counter()
    first = last = None
    count = 0
    retrieve = 0.0
    async for event in services.pipeline.run(question, (), options):
        if isinstance(event, TokenDelta):
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
        elif isinstance(event, Answer):
            retrieve = event.timings_ms["retrieve"]
    assert first is not None and last is not None
    return (
        (first - start) * 1000 - retrieve,
        (last - start) * 1000 - retrieve,
        (count - 1) / (last - first) if last > first else 0.0,
        count,
        retrieve,
    )


def replace_settings(settings: Settings, base_url: str) -> Settings:
    """The same settings pointed at the benchmark's server."""
    return settings.model_copy(update={"base_url": base_url, "small_base_url": None, "large_base_url": None})


def report_json(report: OverheadReport) -> str:
    """One JSON object."""
    return json.dumps(asdict(report))


def report_text(report: OverheadReport) -> str:
    """A short human-readable summary."""
    r = report
    return (
        f"{r.runs} runs, {r.tokens} tokens each; server: first token after {r.server_ttft_ms:.0f} ms, "
        f"{r.server_rate_tok_s:.0f} tok/s\n"
        f"  time to first token p50: bare {r.bare_ttft_p50_ms:.1f} ms, pipeline {r.pipeline_ttft_p50_ms:.1f} ms "
        f"(+{r.added_ttft_p50_ms:.1f} ms, retrieval excluded; retrieval p50 {r.retrieve_p50_ms:.1f} ms)\n"
        f"  total p50: bare {r.bare_total_p50_ms:.0f} ms, pipeline {r.pipeline_total_p50_ms:.0f} ms "
        f"(+{r.added_total_p50_ms:.1f} ms)\n"
        f"  tokens/s p50: bare {r.bare_tok_s_p50:.1f}, pipeline {r.pipeline_tok_s_p50:.1f}; "
        f"tokens received: bare {r.tokens_received_bare}, pipeline {r.tokens_received_pipeline}"
    )


def main_async(settings: Settings, runs: int, tokens: int, ttft_ms: float, rate: float) -> OverheadReport:
    """Run the benchmark on a fresh event loop."""
    return asyncio.run(run_overhead_bench(settings, runs, tokens, ttft_ms, rate))
