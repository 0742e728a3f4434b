import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.llm.discovery import ModelDirectory, list_models, parse_foundry_status, probe_ports, resolve_alias
from rag.errors import ModelUnavailable
from rag.llm.tokens import get_tokenizer
from rag.fakes.openai_server import FakeOpenAIServer

FOUNDRY_IDS = ["Phi-4-mini-instruct-generic-cpu", "Phi-4-mini-instruct-cuda-gpu:4", "Phi-4-mini-reasoning-cuda-gpu:1", "gpt-oss-20b-cuda-gpu:1"]


@pytest.mark.parametrize(
    ("wanted", "available", "expected"),
    [
        ("phi-4-mini", FOUNDRY_IDS, "Phi-4-mini-instruct-cuda-gpu:4"),
        ("gpt-oss-20b", FOUNDRY_IDS, "gpt-oss-20b-cuda-gpu:1"),
        ("phi-4-mini", ["phi4-mini:latest", "llama3"], "phi4-mini:latest"),
        ("phi-4-mini", ["phi4-mini"], "phi4-mini"),
        ("gpt-oss-20b", ["gpt-oss:20b", "gpt-oss:120b"], "gpt-oss:20b"),
        ("phi-4-mini", ["microsoft/Phi-4-mini-instruct"], "microsoft/Phi-4-mini-instruct"),
        ("phi-4-mini", ["Phi-4-mini-reasoning-cuda-gpu:1"], None),
        ("phi-4-mini", ["phi-4", "llama3"], None),
        ("Phi-4-mini-instruct-generic-cpu", FOUNDRY_IDS, "Phi-4-mini-instruct-generic-cpu"),  # exact id wins
        ("phi-4-mini", [], None),
    ],
)
def test_resolve_alias(wanted: str, available: list[str], expected: str | None) -> None:
    assert resolve_alias(wanted, available) == expected


def test_parse_foundry_status() -> None:
    out = "🟢 Model management service is running on http://127.0.0.1:5273/openai/status"
    assert parse_foundry_status(out) == "http://127.0.0.1:5273/v1"
    assert parse_foundry_status("🔴 Model management service is not running!") is None


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(["Phi-4-mini-instruct-cuda-gpu:4", "gpt-oss-20b-cuda-gpu:1"]) as server:
        yield server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_probe_counts_only_servers_with_a_model_list(fake: FakeOpenAIServer) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Html(BaseHTTPRequestHandler):  # like Chainlit: HTML for every path
        def do_GET(self) -> None:  # noqa: N802
            body = b"<!doctype html><html>chat</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    html = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=html.serve_forever, daemon=True).start()
    try:
        ports = ((fake.port, "Foundry Local"), (html.server_address[1], "vLLM"), (_free_port(), "Ollama"))
        async with httpx.AsyncClient(timeout=2) as client:
            found = await probe_ports(client, ports, skip_port=None)
            assert [(s.name, s.base_url) for s in found] == [("Foundry Local", fake.url)]
            assert await probe_ports(client, ports, skip_port=fake.port) == []  # the app's own port
    finally:
        html.shutdown()


async def test_list_models_errors(fake: FakeOpenAIServer) -> None:
    fake.model_list_status = 503
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(ModelUnavailable, match="HTTP 503"):
            await list_models(client, fake.url)


def _directory(settings: Settings, ports: tuple = (), foundry: str | None = None, **kw: object) -> ModelDirectory:
    return ModelDirectory(settings, get_tokenizer(), ports=ports, foundry_status=lambda: foundry, **kw)  # type: ignore[arg-type]


async def test_configured_endpoint_resolves_both_aliases(fake: FakeOpenAIServer, corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, base_url=fake.url, _env_file=None)
    resolution = await _directory(settings).resolve()
    assert resolution.small and resolution.small.model_id == "Phi-4-mini-instruct-cuda-gpu:4"
    assert resolution.large and resolution.large.model_id == "gpt-oss-20b-cuda-gpu:1"
    assert resolution.small.server.source == "RAG_BASE_URL"
    assert resolution.problems == ()


async def test_foundry_status_then_probe(fake: FakeOpenAIServer, corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, _env_file=None)
    resolution = await _directory(settings, foundry=fake.url).resolve()
    assert resolution.small and resolution.small.server.source == "foundry service status"
    resolution = await _directory(settings, ports=((fake.port, "Foundry Local"),)).resolve()
    assert resolution.small and resolution.small.server.source == "probe"


async def test_per_model_endpoints(corpus_dir: Path) -> None:
    with FakeOpenAIServer(["phi4-mini"]) as small, FakeOpenAIServer(["openai/gpt-oss-20b"]) as large:
        settings = Settings(corpus_dir=corpus_dir, small_base_url=small.url, large_base_url=large.url, _env_file=None)
        resolution = await _directory(settings).resolve()
        assert resolution.small and (resolution.small.model_id, resolution.small.server.base_url) == ("phi4-mini", small.url)
        assert resolution.large and (resolution.large.model_id, resolution.large.server.base_url) == ("openai/gpt-oss-20b", large.url)


async def test_nothing_found_is_explained(corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, _env_file=None)
    resolution = await _directory(settings, ports=((_free_port(), "Ollama"),)).resolve()
    assert resolution.small is None and resolution.large is None
    assert "no model server found" in resolution.problems[0]


async def test_missing_model_is_named(fake: FakeOpenAIServer, corpus_dir: Path) -> None:
    settings = Settings(corpus_dir=corpus_dir, base_url=fake.url, large_model="llama3", _env_file=None)
    resolution = await _directory(settings).resolve()
    assert resolution.small is not None and resolution.large is None
    assert any("llama3: not served by" in p for p in resolution.problems)


async def test_unreachable_configured_endpoint(corpus_dir: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    settings = Settings(corpus_dir=corpus_dir, base_url=url, _env_file=None)
    resolution = await _directory(settings).resolve()
    assert resolution.small is None and any(p.startswith(f"RAG_BASE_URL {url}: cannot connect") for p in resolution.problems)


async def test_a_server_started_later_is_found_after_the_recheck_interval(corpus_dir: Path) -> None:
    now = [0.0]
    port = _free_port()
    settings = Settings(corpus_dir=corpus_dir, _env_file=None)
    directory = _directory(settings, ports=((port, "Foundry Local"),), recheck_s=10, clock=lambda: now[0])
    assert (await directory.resolve()).small is None
    with FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], port=port):
        now[0] = 5
        assert (await directory.resolve()).small is None  # cached within the interval
        now[0] = 11
        assert (await directory.resolve()).small is not None


async def test_each_endpoint_is_asked_with_its_own_key(corpus_dir: Path) -> None:
    from pydantic import SecretStr

    with FakeOpenAIServer(["phi4-mini"], api_key="small-secret") as small, FakeOpenAIServer(["gpt-oss:20b"], api_key="large-secret") as large:
        settings = Settings(corpus_dir=corpus_dir, small_base_url=small.url, large_base_url=large.url,
                            small_api_key=SecretStr("small-secret"), large_api_key=SecretStr("large-secret"), _env_file=None)
        resolution = await _directory(settings).resolve()
        assert resolution.problems == ()
        assert resolution.small and resolution.small.model_id == "phi4-mini" and resolution.small.api_key.get_secret_value() == "small-secret"
        assert "small-secret" not in repr(resolution)  # secret to the edge: never in a repr or a log line
        assert resolution.large and resolution.large.model_id == "gpt-oss:20b" and resolution.large.api_key.get_secret_value() == "large-secret"


async def test_a_loaded_model_is_preferred_over_a_listed_catalog_variant(corpus_dir: Path) -> None:
    listed = ["Phi-4-mini-instruct-cuda-gpu:4", "Phi-4-mini-instruct-generic-cpu", "gpt-oss-20b-cuda-gpu:1"]
    with FakeOpenAIServer(listed) as foundry:
        settings = Settings(corpus_dir=corpus_dir, base_url=foundry.url, _env_file=None)
        assert (await _directory(settings).resolve()).small.model_id == "Phi-4-mini-instruct-cuda-gpu:4"  # type: ignore[union-attr]
        foundry.loaded = ["Phi-4-mini-instruct-generic-cpu", "gpt-oss-20b-cuda-gpu:1"]  # what is really loaded
        resolution = await _directory(settings).resolve()
    assert resolution.small is not None and resolution.small.model_id == "Phi-4-mini-instruct-generic-cpu"
    assert resolution.small.server.loaded == ("Phi-4-mini-instruct-generic-cpu", "gpt-oss-20b-cuda-gpu:1")
