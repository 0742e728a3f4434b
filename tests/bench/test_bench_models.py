"""`rag bench models` against the fake server, whose timings are scripted: wrong figures fail."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.bench.models import nearest_rank
from tests.conftest import REPO
from rag.fakes.openai_server import FakeOpenAIServer, Reply


def test_nearest_rank_percentiles_are_values_and_never_above_the_max() -> None:
    assert nearest_rank(list(range(1, 21)), 95) == 19 and nearest_rank(list(range(1, 21)), 50) == 10
    assert nearest_rank([120.0, 80.0, 100.0], 95) == 120.0  # 3 samples: p95 is the max, not above it
    assert nearest_rank([5.0], 50) == 5.0 and nearest_rank([], 95) == 0.0


def _bench(server: FakeOpenAIServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RAG_CORPUS_DIR": str(REPO / "docs_corpus"), "RAG_BASE_URL": server.url, **env}
    return subprocess.run([str(Path(sys.executable).parent / "rag"), "bench", "models", *args], capture_output=True,
                          text=True, env=environment, timeout=120)


@pytest.fixture
def server() -> FakeOpenAIServer:
    fake = FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], {
        # first token after 0.3 s, then 20 more chunks 0.02 s apart: decode 0.4 s for 20 intervals
        "phi-4-mini": Reply(content=[f"w{i} " for i in range(21)], delay_first=0.3, delay_between=0.02),
        "gpt-oss-20b": Reply(status=500, error="out of memory"),
    })
    return fake.start()


def test_streamed_figures_and_errors_from_the_environment(server: FakeOpenAIServer) -> None:
    try:
        result = _bench(server, "--json", BENCH_MODELS="phi-4-mini,gpt-oss-20b", BENCH_ROUNDS="3",
                        BENCH_PROMPT="Say something short.")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    small, large = models["phi-4-mini"], models["gpt-oss-20b"]
    assert (small["rounds"], small["ok"], small["errors"]) == (3, 3, 0)
    assert 280 <= small["ttft_ms_mean"] <= 600  # from the same streamed request
    assert small["p95_ms"] <= small["max_ms"] and small["p50_ms"] <= small["p95_ms"]
    assert small["mean_ms"] >= small["ttft_ms_mean"] + 350  # first token plus 20 intervals of 20 ms
    assert 20 <= small["tok_s"] <= 55  # completion tokens over decode time only (50/s scripted, minus overhead)
    assert small["completion_tokens"] == 21 and small["prompt_tokens"] == 3  # "Say something short."
    assert large["errors"] == 3 and large["ok"] == 0 and "out of memory" in large["error_messages"][0]
    assert len([r for r in server.requests if r["model"] == "phi-4-mini"]) == 4  # one warm-up + 3 rounds


def test_without_streaming_and_as_csv(server: FakeOpenAIServer) -> None:
    try:
        result = _bench(server, "--models", "phi-4-mini", "--rounds", "2", "--no-stream", "--csv")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert values["model"] == "phi-4-mini" and values["ok"] == "2" and values["ttft_ms_mean"] == ""
    assert float(values["mean_ms"]) >= 600  # 0.3 s + 20 x 0.02 s before the whole answer arrives
    assert all(r.get("stream") is False for r in server.requests)


def _compare(server: FakeOpenAIServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RAG_CORPUS_DIR": str(REPO / "docs_corpus"), "RAG_BASE_URL": server.url, **env}
    return subprocess.run([str(Path(sys.executable).parent / "rag"), "compare", *args], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_compare_runs_both_models_on_one_prompt_plain_and_grounded() -> None:
    replies = {"phi-4-mini": Reply(content=[f"s{i} " for i in range(25)], delay_first=0.1, delay_between=0.02),
               "gpt-oss-20b": Reply(content=[f"L{i} " for i in range(25)], reasoning=["think "] * 5, delay_first=0.3,
                                    delay_between=0.03)}
    with FakeOpenAIServer(list(replies), replies) as fake:
        plain = _compare(fake, "--json", COMPARE_PROMPT="What is two plus two?")
        assert [r["messages"] for r in fake.requests] == [[{"role": "user", "content": "What is two plus two?"}]] * 2
        grounded = _compare(fake, "Which port does Ollama use?", "--rag")
        assert all("<source id=" in r["messages"][-1]["content"] for r in fake.requests[2:])
    assert plain.returncode == 0, plain.stderr
    data = json.loads(plain.stdout)
    small, large = data["models"]
    assert (small["model"], large["model"], data["grounded"]) == ("phi-4-mini", "gpt-oss-20b", False)
    assert small["answer"].startswith("s0 s1") and large["answer"].startswith("L0 L1") and "think" not in large["answer"]
    assert small["ttft_ms"] < large["ttft_ms"] <= large["total_ms"] and small["cost_usd"] > 0
    assert grounded.returncode == 0, grounded.stderr
    header = grounded.stdout.splitlines()[0]
    assert "phi-4-mini" in header and "gpt-oss-20b" in header
    assert "first token" in grounded.stdout and "tokens/s" in grounded.stdout and "L0 L1" in grounded.stdout
