"""`rag ask`, `rag doctor` and `rag bench overhead` against the fake server, through the real CLI."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from tests.conftest import REPO
from rag.fakes.openai_server import FakeOpenAIServer, Reply


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(REPO / "docs_corpus"))
    with FakeOpenAIServer(["Phi-4-mini-instruct-generic-cpu", "gpt-oss-20b-cuda-gpu:1"]) as fake:
        monkeypatch.setenv("RAG_BASE_URL", fake.url)
        yield fake


def test_ask_json(server: FakeOpenAIServer) -> None:
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"answer", "model", "backend", "escalated", "reasons", "sources", "timings_ms", "usage"}
    assert data["answer"] == "Ollama listens on port 11434 by default [1]."
    assert (data["model"], data["backend"], data["escalated"]) == ("phi-4-mini", server.url, False)
    assert data["sources"][0]["path"] == "servers/ollama.md" and {"chunk", "score"} <= set(data["sources"][0])
    assert set(data["timings_ms"]) >= {"retrieve", "build_prompt", "draft_first_token", "draft_generation", "total"}
    assert data["usage"]["estimated"] is False and data["usage"]["completion_tokens"] > 0
    assert server.requests[0]["model"] == "Phi-4-mini-instruct-generic-cpu"  # alias resolved to the served id


def test_ask_escalates_and_streams_text(server: FakeOpenAIServer) -> None:
    server.replies["Phi-4-mini-instruct-generic-cpu"] = Reply(content=["Not in the context."])
    server.replies["gpt-oss-20b-cuda-gpu:1"] = Reply(
        content=["<|channel|>analysis<|message|>hmm<|end|><|start|>assistant<|channel|>final<|message|>",
                 "Port 11434, per the Ollama guide [1]."])
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--mode", "auto"])
    assert result.exit_code == 0, result.output
    assert "Not in the context." in result.stdout
    assert "[escalate → gpt-oss-20b after the draft: " in result.stdout
    marker = result.stdout.index("[escalate → gpt-oss-20b")
    assert result.stdout.index("Port 11434, per the Ollama guide [1].") > marker
    assert "hmm" not in result.stdout
    assert "retrieve · " in result.stderr


def test_ask_large_mode_json(server: FakeOpenAIServer) -> None:
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--mode", "large", "--json"])
    data = json.loads(result.output)
    assert data["model"] == "gpt-oss-20b" and data["mode"] == "large"


def test_ask_exits_non_zero_when_no_model_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAG_CORPUS_DIR", str(REPO / "docs_corpus"))
    monkeypatch.setenv("RAG_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?"])
    assert result.exit_code == 1
    assert "Extract from the documents" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rag ask: no model answered:")


def test_doctor_reports_features(server: FakeOpenAIServer) -> None:
    server.replies["gpt-oss-20b-cuda-gpu:1"] = Reply(reasoning=["think"], content=["4"], usage=False)
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "small model phi-4-mini -> Phi-4-mini-instruct-generic-cpu" in result.output
    assert "large model gpt-oss-20b -> gpt-oss-20b-cuda-gpu:1" in result.output
    assert "usage reported: no (counted with tiktoken)" in result.output
    assert "reasoning: delta.reasoning" in result.output


def test_doctor_without_servers_says_what_to_do(monkeypatch: pytest.MonkeyPatch, corpus_dir: Path) -> None:
    import rag.llm.discovery

    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setattr(rag.llm.discovery, "KNOWN_PORTS", ((free, "Ollama"),))  # nothing listens there
    monkeypatch.setattr(rag.llm.discovery, "foundry_status_url", lambda timeout=5.0: None)
    result = CliRunner().invoke(cli, ["doctor", "--no-request"])
    assert result.exit_code == 1
    assert "NOT FOUND" in result.output and "foundry model run phi-4-mini" in result.output
    assert f"no model server found (tried Ollama :{free})" in result.output


def test_bench_overhead_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(REPO / "docs_corpus"))
    result = CliRunner().invoke(cli, ["bench", "overhead", "--runs", "2", "--tokens", "5", "--ttft-ms", "20", "--rate", "500", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tokens_received_bare"] == report["tokens_received_pipeline"] == 5
    assert report["pipeline_ttft_p50_ms"] >= 20 and report["bare_ttft_p50_ms"] >= 20


def test_bench_ingest_json(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["bench", "ingest", "--sizes", "50", "--pdf-pages", "3", "--markdown-bytes", "20000", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["background_chunks"] == 50 and row["pdf_pages"] == 3 and row["pdf_chunks"] >= 3
    assert row["markdown_chunks"] > 1 and row["pdf_total_ms"] >= row["pdf_parse_ms"]


@pytest.mark.parametrize("command", ["ingest", "ui"])
@pytest.mark.parametrize("sizes", ["many", "10,x", "0", ""])
def test_bench_sizes_are_validated(command: str, sizes: str, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["bench", command, "--sizes", sizes])
    assert result.exit_code == 2 and "--sizes" in result.output and "Traceback" not in result.output


def test_malformed_stream_degrades_like_any_model_failure(server: FakeOpenAIServer) -> None:
    # The draft's stream breaks on a line that is not JSON: the large model answers instead.
    server.replies["Phi-4-mini-instruct-generic-cpu"] = Reply(content=["Ollama ", "uses"], raw_after=1)
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "gpt-oss-20b" and data["escalated"]
    assert any("malformed data in the stream" in r for r in data["reasons"])
    # Both break: the documents answer, with a one-line reason and no traceback.
    server.replies["gpt-oss-20b-cuda-gpu:1"] = Reply(content=["x"], raw_after=0)
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "rag ask: no model answered: " in result.stderr
    assert "malformed data in the stream" in result.stderr


def test_a_bad_base_url_is_refused_at_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(REPO / "docs_corpus"))
    monkeypatch.setenv("RAG_BASE_URL", "not-a-url")
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?"])
    assert result.exit_code == 1 and "Invalid setting RAG_BASE_URL: must be an http:// or https:// URL" in result.output
    monkeypatch.delenv("RAG_BASE_URL")
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", "localhost:5273")
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?"])
    assert "Invalid setting FOUNDRY_LOCAL_ENDPOINT: must be an http:// or https:// URL" in result.output


def test_no_model_note_says_what_discovery_found(server: FakeOpenAIServer) -> None:
    server.model_list_status = 500  # the endpoint answers, but not with a model list
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?"])
    assert result.exit_code == 1
    assert f"no model server answered: RAG_BASE_URL {server.url}: GET /models answered HTTP 500" in result.stderr


def test_only_the_draft_asks_for_logprobs(server: FakeOpenAIServer) -> None:
    # Log-probabilities feed the escalation policy's judgement of a draft; elsewhere they only cost time.
    server.replies["Phi-4-mini-instruct-generic-cpu"] = Reply(content=["Not in the context."])
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--json"])
    assert result.exit_code == 0, result.output
    draft, final = server.requests
    assert draft["model"] == "Phi-4-mini-instruct-generic-cpu" and draft.get("logprobs") is True
    assert final["model"] == "gpt-oss-20b-cuda-gpu:1" and "logprobs" not in final
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--mode", "small", "--json"])
    assert "logprobs" not in server.requests[-1]  # small-only mode: no draft to judge


@pytest.mark.parametrize("reply", [
    Reply(content=["Ollama ", "listens ", "on ", "port ", "11434 ", "accord"], end_after=6),  # clean close, no [DONE]
    Reply(content=["Ollama ", "listens ", "on ", "port ", "11434 ", "accord"], finish_reason="length"),
])
def test_a_stream_that_ends_before_the_model_finished_is_never_a_finished_answer(server: FakeOpenAIServer,
                                                                                   reply: Reply) -> None:
    # Issue 21, finding 2: a server that closes the connection cleanly after a few tokens, with no finish
    # reason and no [DONE], gave exit 0 with the fragment as the answer and no note.
    server.replies["Phi-4-mini-instruct-generic-cpu"] = reply
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--json", "--mode", "small"])
    data = json.loads(result.output)
    assert data["answer"] == "Ollama listens on port 11434 accord"
    assert data["note"] and data["note"].startswith("The answer is incomplete: phi-4-mini")


def test_an_incomplete_draft_is_escalated_in_auto_mode(server: FakeOpenAIServer) -> None:
    server.replies["Phi-4-mini-instruct-generic-cpu"] = Reply(
        content=["Ollama listens on port 11434 by default [1], unless OLLAMA_HOST ", "says other"], end_after=2)
    result = CliRunner().invoke(cli, ["ask", "Which port does Ollama use?", "--json", "--mode", "auto"])
    data = json.loads(result.output)
    assert data["model"] == "gpt-oss-20b" and data["escalated"] is True
    assert any(r.startswith("draft incomplete: the stream ended before the model finished") for r in data["reasons"])
