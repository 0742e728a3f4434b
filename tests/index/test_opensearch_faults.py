"""Faults against real OpenSearch: a node of a two-node cluster killed mid-conversation, and the chat while
the search server is down and once it is back (through the real handlers, the fake model server at the
HTTP layer)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from unittest.mock import Mock

import pytest

from rag.config import Settings
from rag.fakes.openai_server import FakeOpenAIServer
from rag.index.opensearch_cluster import Cluster, cluster_health, kill_node
from rag.runtime import build_services
from rag.types import Answer
from tests.conftest import REPO
from tests.index.test_opensearch import Gate
from tests.opensearch import opensearch_cluster
from tests.test_app import _final_content, app_module, context, server  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    with opensearch_cluster(2) as cluster:
        yield cluster


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(REPO / "docs_corpus", folder, ignore=shutil.ignore_patterns("uploads"))
    return folder


async def test_a_node_killed_mid_conversation_and_questions_are_still_answered(
        two_nodes: Cluster, corpus: Path, server: FakeOpenAIServer) -> None:  # noqa: F811
    import asyncio

    settings = Settings(corpus_dir=corpus, data_dir=corpus.parent / "data", engine="opensearch",
                        opensearch_url=two_nodes.url_setting, opensearch_index=f"rag-test-{uuid.uuid4().hex[:12]}",
                        opensearch_shards=2, opensearch_replicas=1, base_url=server.url, _env_file=None)
    services = build_services(settings)
    await asyncio.to_thread(services.retriever.warm_up)
    for _ in range(120):  # both copies of both shards placed: a node may go
        health = cluster_health(two_nodes) or {}
        if health.get("status") == "green" and health.get("unassigned_shards") == 0:
            break
        await asyncio.sleep(0.5)

    async def ask(question: str) -> Answer:
        events = [e async for e in services.pipeline.run(question)]
        answer = events[-1]
        assert isinstance(answer, Answer)
        return answer

    before = await ask("Which port does Ollama use?")
    assert before.sources[0].passage.chunk.source == "servers/ollama.md"
    kill_node(two_nodes, 1)
    after = await ask("Which port does Ollama use?")
    assert after.model == "phi-4-mini" and after.sources[0].passage.chunk.source == "servers/ollama.md"
    assert [s.passage.chunk for s in after.sources] == [s.passage.chunk for s in before.sources]
    follow = await ask("Which port does LM Studio listen on?")
    assert follow.sources[0].passage.chunk.source == "servers/lm-studio.md"
    await services.aclose()


@pytest.fixture
def gate(opensearch_url: str) -> Iterator[Gate]:
    gate = Gate(opensearch_url.split(",")[0])
    yield gate
    gate.close()


def _shown(context: Mock) -> list[str]:  # noqa: F811
    return [str(c.args[0].get("output") or "") for c in context.send_step.call_args_list + context.update_step.call_args_list]


async def test_the_chat_says_search_is_down_and_answers_once_it_is_back(
        app_module: ModuleType, context: Mock, server: FakeOpenAIServer, gate: Gate, corpus: Path) -> None:  # noqa: F811
    import chainlit as cl

    settings = Settings(corpus_dir=corpus, data_dir=corpus.parent / "data", engine="opensearch",
                        opensearch_url=gate.url, opensearch_index=f"rag-test-{uuid.uuid4().hex[:12]}",
                        opensearch_timeout_s=2, base_url=server.url, _env_file=None)
    setattr(app_module, "_services", build_services(settings))
    await app_module.start()
    greeting = _shown(context)[0]
    assert "Search is unreachable at" in greeting and str(gate.port) in greeting and "kept and indexed then" in greeting
    assert "Connected models" in greeting and "Answering from" in greeting  # the rest of the greeting stands
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    down = _final_content(context)
    assert down.startswith("**Not answered:** Search is unreachable at") and "Traceback" not in down
    assert server.requests == []  # no model was asked without sources
    gate.open()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert _final_content(context).startswith("Ollama listens on port 11434")
