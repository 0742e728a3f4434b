"""The Chainlit handlers in app.py, driven with a real ChainlitContext and a recording emitter."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from unittest.mock import AsyncMock, Mock

import pytest
import pytest_asyncio

from rag.config import Settings
from rag.runtime import build_services
from tests.conftest import REPO
from tests.fakes.openai_server import FakeOpenAIServer, Reply


@pytest.fixture(scope="module")
def app_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("chainlit-root")
    patch = pytest.MonkeyPatch()
    patch.setenv("RAG_CORPUS_DIR", str(REPO / "docs_corpus"))
    patch.setenv("CHAINLIT_APP_ROOT", str(root))  # chainlit writes .chainlit/ and .files/ here, not in the repo
    spec = importlib.util.spec_from_file_location("app_under_test", REPO / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app_under_test"] = module
    spec.loader.exec_module(module)
    yield module
    patch.undo()


@pytest_asyncio.fixture
async def context() -> AsyncIterator[Mock]:
    from chainlit.context import ChainlitContext, context_var
    from chainlit.emitter import BaseChainlitEmitter
    from chainlit.session import WebsocketSession

    session = Mock(spec=WebsocketSession)
    session.id = "session-1"
    session.thread_id = "thread-1"
    session.user = None
    session.chat_settings = {}
    session.chat_profile = None
    session.client_type = "webapp"
    session.languages = ["en"]
    session.user_env = {}
    session.http_referer = None
    session.has_first_interaction = True
    session.emit = AsyncMock()
    emitter = Mock(spec=BaseChainlitEmitter)
    token = context_var.set(ChainlitContext(session, emitter))
    yield emitter
    context_var.reset(token)


def _sent_step_names(emitter: Mock) -> list[str]:
    names = [c.args[0]["name"] for c in emitter.send_step.call_args_list]
    return names + [c.args[0]["name"] for c in emitter.update_step.call_args_list]


def _final_content(emitter: Mock) -> str:
    messages = [c.args[0] for c in emitter.update_step.call_args_list if c.args[0]["type"] == "assistant_message"]
    return messages[-1]["output"]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"]) as fake:
        yield fake


def _use(app_module: ModuleType, **settings: object) -> None:
    app_module._services = build_services(Settings(corpus_dir=REPO / "docs_corpus", _env_file=None, **settings))


async def test_answer_streams_with_timed_steps_and_sources(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert any(n.startswith("retrieve · ") and n.endswith(" ms") for n in names)
    assert any(n.startswith("build prompt · ") for n in names)
    assert any(n.startswith("phi-4-mini · first token ") and "tok/s" in n for n in names)
    assert any(n.startswith("escalation · not needed") for n in names)
    content = _final_content(context)
    assert content.startswith("Ollama listens on port 11434 by default [1].")
    assert "Source 1: `servers/ollama.md › Running the models with Ollama` ✓" in content
    assert "phi-4-mini · auto mode" in content
    assert context.stream_start.called  # streamed, not sent in one piece
    history = cl.user_session.get("history")
    assert history[-1].question == "Which port does Ollama use?"


async def test_escalation_is_visible_with_its_reason(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["11434."])
    server.replies["gpt-oss-20b"] = Reply(content=["Ollama's API listens on port 11434 by default, per the guide [1]."],
                                          reasoning=["Source 1 says 11434."])
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert "escalate → gpt-oss-20b: draft too short (3 tokens, minimum 12) (+1 more)" in names or any(
        n.startswith("escalate → gpt-oss-20b: draft too short") for n in names
    )
    assert any(n.startswith("gpt-oss-20b · first token") for n in names)
    content = _final_content(context)
    assert content.startswith("Ollama's API listens on port 11434")
    assert "Source 1 says" not in content  # reasoning never in the answer
    assert "escalated" in content


async def test_no_server_answers_extractively_and_says_how_to_connect(app_module: ModuleType, context: Mock, monkeypatch: pytest.MonkeyPatch) -> None:
    import chainlit as cl

    _use(app_module)
    app_module._services.directory.ports = ()
    app_module._services.directory.foundry_status = lambda: None
    await app_module.start()
    greeting = context.send_step.call_args_list[0].args[0]["output"]
    assert "No model server found" in greeting and "foundry model run phi-4-mini" in greeting
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    content = _final_content(context)
    assert content.startswith("**Extract from the documents**")
    assert "[1]" in content


async def test_server_dying_mid_answer_is_reported_and_the_app_keeps_answering(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer
) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "listens ", "on ", "port"], cut_after=2)
    server.replies["gpt-oss-20b"] = Reply(status=500, error="engine crashed")
    _use(app_module, base_url=server.url)
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert "phi-4-mini · failed" in names and "gpt-oss-20b · failed" in names
    content = _final_content(context)
    assert content.startswith("**Extract from the documents**")
    assert "stream cut" in content and "HTTP 500" in content  # the note says why
    assert "Traceback" not in content

    server.replies["phi-4-mini"] = Reply()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert _final_content(context).startswith("Ollama listens on port 11434")
