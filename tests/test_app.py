"""The Chainlit handlers in app.py, driven with a real ChainlitContext and a recording emitter."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
import pytest_asyncio

from rag.config import Settings
from rag.runtime import Services, build_services, preload
from tests.conftest import REPO, SHARED_DATA
from rag.fakes.openai_server import FakeOpenAIServer, Reply


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
    emitter.set_chat_settings = Mock()  # synchronous in Chainlit's emitter
    token = context_var.set(ChainlitContext(session, emitter))
    yield emitter
    context_var.reset(token)
    from chainlit.user_session import user_sessions
    user_sessions.pop(session.id, None)  # a session's values live in a module global: each test starts afresh


def _elements(emitter: Mock, name: str) -> list[dict]:
    """The `name` elements sent, but the greeting's, which only build their component (see `_preloaded`)."""
    return _preloaded(emitter, name, False)


def _preloaded(emitter: Mock, name: str, preload: bool = True) -> list[dict]:
    return [c.args[0] for c in emitter.send_element.call_args_list
            if c.args[0].get("name") == name and bool((c.args[0].get("props") or {}).get("preload")) is preload]


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


def _use(app_module: ModuleType, **settings: Any) -> Services:
    """Give the app services over the bundled corpus, as its start-up would (settings passed in, not read)."""
    services = build_services(Settings(_env_file=None, **{"corpus_dir": REPO / "docs_corpus", **settings}))
    setattr(app_module, "_services", services)
    return services


async def test_answer_streams_with_timed_steps_and_sources(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(delay_between=0.1)  # three chunks 100 ms apart: more than one flush
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert any(n.startswith("retrieve · ") and n.endswith(" ms") for n in names)
    assert any(n.startswith("build prompt · ") for n in names)
    assert any(n.startswith("phi-4-mini · first token ") and "tok/s" in n for n in names)
    assert any(n.startswith("escalation · not needed") for n in names)
    content = _final_content(context)
    props = _elements(context, "Sources")[-1]["props"]
    # The citation is a link to source 1 in the Sources element below the answer.
    assert content.startswith(f"Ollama listens on port 11434 by default [\\[1\\]](#{props['anchor']}-1).")
    sources = props["sources"]
    assert sources[0]["location"] == "servers/ollama.md › Running the models with Ollama" and sources[0]["cited"]
    assert sources[0]["text"].startswith("# Running the models with Ollama") and not sources[1]["cited"]
    assert sources[0]["before"] == "" and sources[0]["after"]  # the first chunk: text follows it, none before
    assert "phi-4-mini · auto mode" in content
    # Streamed, not sent in one piece: several flushes whose text joins into the answer.
    streamed = [context.stream_start.call_args.args[0]["output"]] + [c.kwargs["token"] for c in context.send_token.call_args_list]
    assert len(streamed) >= 2 and "".join(streamed).startswith("Ollama listens on port 11434")
    conversation = cl.user_session.get("conversation")
    assert [e.question for e in conversation.exchanges] == ["Which port does Ollama use?"]
    assert conversation.exchanges[0].cited[0].source == "servers/ollama.md"


async def test_escalation_is_visible_with_its_reason(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["11434."])
    server.replies["gpt-oss-20b"] = Reply(content=["Ollama's API listens on port 11434 by default, per the guide [1]."],
                                          reasoning=["Source 1 says 11434."])
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert "escalate → gpt-oss-20b: draft too short (+1 more)" in names
    assert any(n.startswith("gpt-oss-20b · first token") for n in names)
    content = _final_content(context)
    assert content.startswith("Ollama's API listens on port 11434")
    assert "Source 1 says" not in content  # reasoning never in the answer
    assert "escalated" in content


async def test_the_greeting_builds_the_answers_components_before_the_first_question(
        app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    """Issue 25, point 3: one element per custom component the answers use, for the greeting (it draws
    nothing: public/elements/lib/; the first answer used to fetch and build them while its text was due)."""
    _use(app_module, base_url=server.url)
    await app_module.start()
    (greeting,) = [c.args[0] for c in context.send_step.call_args_list if "Answering from" in c.args[0]["output"]]
    for name in ("Sources", "Compare"):
        (element,) = _preloaded(context, name)
        assert element["forId"] == greeting["id"] and element["props"] == {"preload": True}


async def test_choosing_side_by_side_builds_its_component_with_the_message_that_says_so(
        app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    """A reopened chat gets no greeting: side by side chosen there builds its component when chosen."""
    _use(app_module, base_url=server.url)
    await app_module.start()
    context.send_element.reset_mock()
    await app_module.settings_changed({"mode": "compare"})
    (said,) = [c.args[0] for c in context.send_step.call_args_list if c.args[0]["output"].startswith("Settings for this chat")]
    (element,) = _preloaded(context, "Compare")
    assert element["forId"] == said["id"] and not _preloaded(context, "Sources")
    context.send_element.reset_mock()
    await app_module.settings_changed({"mode": "compare", "temperature": 0.5})  # already side by side: nothing again
    assert not _preloaded(context, "Compare")


async def test_no_server_answers_extractively_and_says_how_to_connect(app_module: ModuleType, context: Mock, monkeypatch: pytest.MonkeyPatch) -> None:
    import chainlit as cl

    services = _use(app_module)
    services.directory.ports = ()
    services.directory.foundry_status = lambda: None
    await app_module.start()
    greeting = context.send_step.call_args_list[0].args[0]["output"]
    assert "No model server found" in greeting and "foundry model run phi-4-mini" in greeting
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    content = _final_content(context)
    assert content.startswith("**Extract from the documents**")
    assert "[\\[1\\]](#source-" in content  # quotes cite their sources, as links


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


async def test_a_stream_closed_without_a_finish_reason_is_shown_as_incomplete(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer
) -> None:
    import chainlit as cl

    # Both servers close the stream cleanly mid-answer (no finish reason, no [DONE]): the draft is escalated
    # as incomplete, and the large model's answer, cut the same way, says so under it.
    cut = ["Ollama ", "listens ", "on ", "port ", "11434 ", "accord"]
    server.replies["phi-4-mini"] = Reply(content=cut, end_after=6)
    server.replies["gpt-oss-20b"] = Reply(content=cut, end_after=6)
    _use(app_module, base_url=server.url)
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    content = _final_content(context)
    assert content.startswith("Ollama listens on port 11434 accord")
    assert "The answer is incomplete: gpt-oss-20b's stream ended before the model finished" in content
    shown = [str(c.args[0].get("output") or "") + c.args[0]["name"]
             for c in context.send_step.call_args_list + context.update_step.call_args_list]
    assert any("draft incomplete: the stream ended before the model finished" in text for text in shown)


async def test_a_message_over_the_limit_gets_a_reason_and_the_chat_goes_on(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer
) -> None:
    import chainlit as cl

    from rag.chat.paste import MAX_MESSAGE_CHARS

    _use(app_module, base_url=server.url)
    for body in ("x" * (MAX_MESSAGE_CHARS + 1), "/paste " + "word " * MAX_MESSAGE_CHARS):
        await app_module.answer(cl.Message(content=body))
        content = [c.args[0]["output"] for c in context.send_step.call_args_list
                   if c.args[0]["type"] == "assistant_message"][-1]
        assert content.startswith("**Not sent:** This message is ") and f"at most {MAX_MESSAGE_CHARS:,}" in content
        assert "Attach a longer text as a file" in content
    assert server.requests == []
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert _final_content(context).startswith("Ollama listens on port 11434")


def test_the_browser_and_the_server_share_one_message_limit() -> None:
    import re

    from rag.chat.paste import MAX_MESSAGE_CHARS, SOCKET_BUFFER_BYTES

    script = (REPO / "public" / "chat.js").read_text()
    assert int(re.search(r"MAX_MESSAGE_CHARS = (\d+);", script).group(1)) == MAX_MESSAGE_CHARS  # type: ignore[union-attr]
    assert SOCKET_BUFFER_BYTES >= 6 * MAX_MESSAGE_CHARS  # any script, JSON-escaped, still reaches the app


def _corpus_copy(tmp_path: Path, app_module: ModuleType, server: FakeOpenAIServer, **extra: Any) -> Path:
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "docs_corpus", corpus)
    _use(app_module, corpus_dir=corpus, base_url=server.url, **extra)
    return corpus


def _element(path, name: str) -> Mock:
    element = Mock()
    element.name, element.path = name, str(path)
    return element


async def test_attached_file_is_indexed_before_the_answer_and_the_answer_draws_on_it(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path
) -> None:
    import chainlit as cl

    corpus = _corpus_copy(tmp_path, app_module, server)
    upload = tmp_path / "minutes.md"
    upload.write_text("# Board minutes\n\nThe board approved the 2027 budget of 4.2 million.")
    await app_module.answer(cl.Message(content="Summarize the file I attached", elements=[_element(upload, "minutes.md")]))
    names = _sent_step_names(context)
    assert any(n.startswith("upload · minutes.md · 1 chunk · parse ") for n in names)
    stored = list((corpus / "uploads").iterdir())
    assert len(stored) == 1
    prompt = server.requests[-1]["messages"][-1]["content"]
    assert "approved the 2027 budget" in prompt and f'document="uploads/{stored[0].name}"' in prompt
    assert "docs_corpus" not in prompt and 'document="servers/' not in prompt  # focused on the attachment


async def test_rejected_and_too_many_files_are_explained(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path
) -> None:
    import chainlit as cl

    corpus = _corpus_copy(tmp_path, app_module, server, max_upload_files=2)
    bad = tmp_path / "image.md"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000))
    await app_module.answer(cl.Message(content="", elements=[_element(bad, "image.md")]))
    contents = [c.args[0]["output"] for c in context.update_step.call_args_list]
    assert any("**image.md** was not added: binary data, not text" in c for c in contents)
    many = [_element(bad, f"f{i}.md") for i in range(3)]
    await app_module.answer(cl.Message(content="", elements=many))
    sent = [c.args[0]["output"] for c in context.send_step.call_args_list]
    assert any("Too many files at once: 3 (limit 2, RAG_MAX_UPLOAD_FILES)" in c for c in sent)
    assert not (corpus / "uploads").exists() or list((corpus / "uploads").iterdir()) == []
    # A question sent with files none of which could be added is not answered from the other documents (a
    # first-contact walk: "Summarize the attached report" with a corrupt PDF got an answer about the app)
    requests = len(server.requests)
    await app_module.answer(cl.Message(content="Summarize the attached report", elements=[_element(bad, "report.md")]))
    sent = [c.args[0]["output"] for c in context.send_step.call_args_list]
    assert "none of the attached files could be added" in sent[-1] and len(server.requests) == requests
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))  # the next question is answered
    assert len(server.requests) > requests


async def test_docs_lists_documents_and_deletes_an_upload_after_confirmation(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path
) -> None:
    import chainlit as cl

    corpus = _corpus_copy(tmp_path, app_module, server)
    upload = tmp_path / "kiwi.md"
    upload.write_text("# Kiwi\n\nKiwis are flightless birds.")
    await app_module.answer(cl.Message(content="", elements=[_element(upload, "kiwi.md")]))
    (stored,) = list((corpus / "uploads").iterdir())
    source = f"uploads/{stored.name}"

    await app_module.answer(cl.Message(content="/docs"))
    listing = context.send_step.call_args_list[-1].args[0]["output"]
    assert "| `how-this-app-works.md` | markdown |" in listing and f"| `{source}` |" in listing

    context.send_ask_user.return_value = {"name": "cancel", "payload": {"value": "keep"}, "label": "Keep"}
    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": source}))
    assert stored.exists()

    context.send_ask_user.return_value = {"name": "confirm", "payload": {"value": "delete"}, "label": "Delete"}
    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": source}))
    assert not stored.exists()
    result = await app_module.services().retriever.search("flightless kiwis", 3)
    assert all(p.chunk.source != source for p in result.passages)

    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": "how-this-app-works.md"}))
    assert (corpus / "how-this-app-works.md").exists()  # bundled documents cannot be deleted from the chat


def test_html_in_documents_cannot_reach_the_page() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".chainlit" / "config.toml").read_text())
    assert config["features"]["unsafe_allow_html"] is False


def test_the_element_stubs_load_their_components_the_same_way() -> None:
    """Sources.jsx and Compare.jsx each define the page's one loader (the first to run wins): the same
    line in both, or an edit to one would only sometimes apply. It refuses an error page as code."""
    loaders = {[line for line in (REPO / "public" / "elements" / name).read_text().splitlines()
                if line.startswith("const load = ")][0] for name in ("Sources.jsx", "Compare.jsx")}
    assert len(loaders) == 1 and "r.status !== 200" in loaders.pop()


async def test_settings_switch_the_mode_for_this_session_only(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    (widgets,) = [c.args[1] for c in context.emit.call_args_list if c.args[0] == "chat_settings"]
    assert [w["id"] for w in widgets][:3] == ["mode", "temperature", "top_k"]
    assert context.set_chat_settings.call_args.args[0]["mode"] == "auto"
    await app_module.settings_changed({"mode": "large", "temperature": 0.5, "top_k": 3})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    body = server.requests[-1]
    assert body["model"] == "gpt-oss-20b" and body["temperature"] == 0.5
    assert body["messages"][-1]["content"].count("<source id=") == 3
    assert "gpt-oss-20b · large mode" in _final_content(context)
    assert app_module.services().options.mode == "auto"  # the app-wide default is untouched


async def test_side_by_side_fills_both_columns_and_records_stats(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["gpt-oss-20b"] = Reply(reasoning=["Think."], content=["Port 11434 [1]."], delay_between=0.05)
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": "compare"})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert {r["model"] for r in server.requests} == {"phi-4-mini", "gpt-oss-20b"}
    sent = _elements(context, "Compare")
    # Ready on the page when side by side was chosen, for a bubble not sent yet; once more at the end; and
    # the next answer's, ready after this one. While the models stream, the columns go through the
    # answer's live feed, not as element updates; its arrival is nobody's wait (issue 25).
    ready, final_element, after = sent
    assert ready["id"] == final_element["id"] != after["id"]
    assert ready["props"]["columns"] == [] and ready["props"]["live"] and after["props"]["live"] != ready["props"]["live"]
    (bubble,) = {c.args[0]["id"] for c in context.send_step.call_args_list if c.args[0]["type"] == "assistant_message"
                 and c.args[0]["output"].startswith("**Side by side**")}
    assert ready["forId"] == bubble != after["forId"]  # shown by the bubble it was readied for, only
    assert final_element["props"]["live"] is None
    from rag.ui.live import FEEDS
    assert FEEDS.get(ready["props"]["live"]) is None  # closed with the answer
    final = final_element["props"]["columns"]
    assert [c["alias"] for c in final] == ["phi-4-mini", "gpt-oss-20b"]
    assert final[0]["text"].startswith("Ollama listens") and final[1]["text"] == "Port 11434 [1]."
    assert final[1]["reasoning"] == "Think." and "Think." not in final[1]["text"]
    assert all(c["status"] == "done" and c["ttft_ms"] > 0 and c["tokens"] > 0 and c["cost"] > 0 for c in final)
    assert "side by side · both models" in _final_content(context)
    chart = _elements(context, "LatencyChart")
    assert chart and chart[-1]["props"]["points"][0]["mode"] == "compare"

    await app_module.answer(cl.Message(content="/stats"))
    report = context.send_step.call_args_list[-1].args[0]["output"]
    assert "**1 answer**" in report and "| gpt\u2011oss\u201120b | 1 |" in report


async def test_side_by_side_that_fails_before_any_column_shows_none_and_closes_its_feed(
        app_module: ModuleType, context: Mock, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import chainlit as cl

    from rag.errors import SearchUnavailable
    from rag.ui.live import FEEDS

    services = _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": "compare"})

    async def down(*args: object, **kwargs: object) -> object:
        raise SearchUnavailable("http://127.0.0.1:9", "connection refused")

    monkeypatch.setattr(services.retriever, "search", down)
    opened = dict(FEEDS._feeds)
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    ready, after = _elements(context, "Compare")  # readied when side by side was chosen, and after the failure
    removed = [c.args[1]["id"] for c in context.emit.call_args_list if c.args[0] == "remove_element"]
    assert removed == [ready["id"]] != [after["id"]]  # no empty columns over the failure
    assert "Search is unreachable" in _final_content(context)
    assert FEEDS._feeds == opened  # the answer's feed is closed


async def test_side_by_side_with_the_large_model_down(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["gpt-oss-20b"] = Reply(status=400, error="No OpenAIService provider found for modelName gpt-oss-20b")
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": "compare"})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    final = [e for e in _elements(context, "Compare") if e["props"]["live"] is None]  # not the next answer's
    left, right = final[-1]["props"]["columns"]
    assert left["status"] == "done" and left["text"]
    assert right["status"] == "error" and "model not loaded" in right["error"]


async def test_one_chart_moves_into_the_latest_answers_latency_step(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    await app_module.answer(cl.Message(content="What is the escalation policy?"))
    sent = _elements(context, "LatencyChart")
    assert len({e["id"] for e in sent}) == 1  # one chart per chat, moved: never removed and re-sent
    groups = [c.args[0] for c in context.send_step.call_args_list if c.args[0]["name"].startswith("latency")]
    assert len(groups) == 2 and [e["forId"] for e in sent] == [g["id"] for g in groups]  # in each answer's latency step
    assert context.delete_step.call_args_list == []
    # The answer is the turn's last message (it carries Copy and the rating); the chart is not a message.
    messages = [c.args[0] for c in context.send_step.call_args_list + context.stream_start.call_args_list
                if c.args[0]["type"] == "assistant_message"]
    assert messages[-1]["id"] == groups[-1]["parentId"]
    # Only the latest answer's latency step stays open; the first closed once the second was answered.
    closed = [c.args[0] for c in context.update_step.call_args_list if c.args[0]["id"] == groups[0]["id"]]
    assert closed[-1]["autoCollapse"] is True and closed[-1]["defaultOpen"] is False
    assert not any(c.args[0]["id"] == groups[1]["id"] and c.args[0]["autoCollapse"] for c in context.update_step.call_args_list)
    # Titled with every stage's time.
    assert re.match(r"latency · retrieve \S+ ms · build prompt \S+ ms · phi-4-mini first token", closed[-1]["name"])
    points = sent[-1]["props"]["points"]
    assert [p["n"] for p in points] == [1, 2] and points[0]["runs"][0]["model"] == "phi-4-mini"


async def test_a_reopened_conversations_open_latency_step_closes_in_place(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    """Closing the reopened conversation's last latency step keeps when it was made: rewritten with a new
    createdAt, it would sort after its stage steps and Chainlit would drop them on the next reopen."""
    import chainlit as cl

    _use(app_module, base_url=server.url)
    stored = {"id": "group-1", "threadId": "thread-1", "parentId": "answer-1", "type": "tool", "icon": "timer",
              "name": "latency · retrieve 3 ms", "defaultOpen": True, "autoCollapse": False, "input": "",
              "output": "", "createdAt": "2026-01-02T03:04:05.000Z", "start": "2026-01-02T03:04:05.000Z",
              "end": "2026-01-02T03:04:06.000Z"}
    stage = {**stored, "id": "stage-1", "parentId": "group-1", "icon": None, "name": "retrieve 3 ms",
             "defaultOpen": False, "createdAt": "2026-01-02T03:04:05.100Z"}
    await app_module.resume({"id": "thread-1", "name": "Ollama", "createdAt": stored["createdAt"], "userId": None,
                             "userIdentifier": None, "tags": None, "metadata": {}, "steps": [stored, stage],
                             "elements": []})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    (closed,) = [c.args[0] for c in context.update_step.call_args_list if c.args[0]["id"] == "group-1"]
    assert closed["autoCollapse"] is True and closed["defaultOpen"] is False
    assert (closed["createdAt"], closed["start"], closed["end"]) == (stored["createdAt"], stored["start"], stored["end"])
    assert closed["createdAt"] < stage["createdAt"] and closed["name"] == stored["name"]


async def test_a_reopened_side_by_side_chat_sends_its_first_columns_with_the_bubble(
        app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    """Chainlit replaces the page's elements with the thread's after `on_chat_resume`: columns readied
    before that are gone, so the first answer after a reopen sends its own (with its bubble)."""
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": "compare"})  # readied on this page
    (readied,) = _elements(context, "Compare")
    from rag.chat import conversation as chat
    from rag.ui import state
    stored = {"rag_conversation": chat.to_dict(state.conversation(app_module.services().options))}
    await app_module.resume({"id": "thread-1", "name": "Ollama", "createdAt": "2026-01-02T03:04:05.000Z",
                             "userId": None, "userIdentifier": None, "tags": None, "metadata": stored, "steps": [],
                             "elements": []})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    (bubble,) = {c.args[0]["id"] for c in context.send_step.call_args_list if c.args[0]["type"] == "assistant_message"
                 and c.args[0]["output"].startswith("**Side by side**")}
    shown = [e for e in _elements(context, "Compare") if e["forId"] == bubble]
    assert shown and shown[0]["id"] != readied["id"] and shown[0]["props"]["columns"] == []  # sent with the bubble


async def test_the_chart_says_plainly_when_there_is_nothing_to_plot(app_module: ModuleType, context: Mock) -> None:
    import chainlit as cl

    services = _use(app_module)
    services.directory.ports = ()
    services.directory.foundry_status = lambda: None
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))  # answered by extracts
    (chart,) = _elements(context, "LatencyChart")  # the element itself says so (public/elements/LatencyChart.jsx)
    assert all(not p["runs"] for p in chart["props"]["points"])
    assert "Nothing to plot yet" in (REPO / "public" / "elements" / "LatencyChart.jsx").read_text()


async def test_names_from_the_folder_are_escaped_where_they_land(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    import chainlit as cl

    from rag import markdown as md

    corpus = _corpus_copy(tmp_path, app_module, server)
    evil = "x`![i](leak.png)`<img src=y>.md"  # a file name cannot hold a slash; a relative URL still loads
    (corpus / evil).write_text("# Zebra\n\nZebra crossings are striped in black and white.")
    await app_module.answer(cl.Message(content="/docs"))
    listing = context.send_step.call_args_list[-1].args[0]["output"]
    assert f"| {md.code(evil)} |" in listing
    size = (corpus / evil).stat().st_size
    assert f"| {md.code(evil)} | markdown | {size}\u00a0B |" in listing  # bytes, not "0 KB"; never wrapped
    assert "![i](" not in listing.replace(md.code(evil), "")  # nowhere outside its code span
    await app_module.answer(cl.Message(content="Which crossings are striped in black and white?"))
    retrieve = next(c.args[0]["output"] for c in context.send_step.call_args_list
                    if str(c.args[0].get("output", "")).startswith("query: "))
    assert f"1. {md.code(evil + ' › Zebra')} · score" in retrieve


async def test_an_image_in_an_answer_is_never_rendered(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["Ollama uses 11434 [1]. !", "[logo](http://evil.example/leak?q=secret) ",
                                                  "and [docs](https://ollama.com) for more, as the guide says [1]."])
    _use(app_module, base_url=server.url, min_draft_support=0.0)  # the draft must stand: its rendering is tested
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    streamed = [context.stream_start.call_args.args[0]["output"]] + [c.kwargs["token"] for c in context.send_token.call_args_list]
    assert "![" not in "".join(streamed)  # not even for a moment while streaming
    content = _final_content(context)
    assert "![" not in content and "[image not loaded: logo] (<http://evil.example/leak?q=secret>)" in content
    assert "docs (<https://ollama.com>)" in content  # a link shows where it goes


async def test_the_draft_stays_on_screen_while_the_large_model_reasons(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer
) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["11434."])
    server.replies["gpt-oss-20b"] = Reply(reasoning=["Source ", "1 ", "says ", "11434."], delay_first=1.6, delay_between=0.3,
                                          content=["Ollama listens on port 11434 by default, per the guide [1]."])
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    bubbles = [c.args[0]["output"] for c in context.update_step.call_args_list if c.args[0]["type"] == "assistant_message"]
    checking = [b for b in bubbles if b.startswith("11434\\.") and "being checked by gpt-oss-20b" in b]
    assert checking, bubbles  # the draft stays, marked, after the decision to escalate
    assert any("*gpt-oss-20b is reading the question and sources · " in b for b in checking)  # ticking while it waits
    assert any("*gpt-oss-20b is reasoning · " in b and " tokens" in b for b in checking)
    final = _final_content(context)
    assert final.startswith("Ollama listens on port 11434") and "being checked" not in final and "is reading the question" not in final
    titles = _sent_step_names(context)
    assert any(t.startswith("gpt-oss-20b · waiting for first token · ") for t in titles)
    assert any(t.startswith("gpt-oss-20b · first token ") and t.endswith(" tokens") for t in titles)  # live
    assert any(t.startswith("gpt-oss-20b · first token ") and t.endswith(" tok/s") for t in titles)  # final


async def test_commands_are_registered_for_the_composer(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    (commands,) = context.set_commands.call_args.args
    assert [c["id"] for c in commands] == ["docs", "stats", "chart", "paste", "export"] and all(c["description"] for c in commands)
    await app_module.answer(cl.Message(content="", command="stats"))  # picked from the menu, nothing typed
    assert "No answers yet in this session." in context.send_step.call_args_list[-1].args[0]["output"]


async def test_a_server_started_after_the_greeting_is_announced(app_module: ModuleType, context: Mock) -> None:
    import chainlit as cl

    from rag.fakes.appserver import free_port
    from rag.ui.greeting import announce_when_a_server_appears

    port = free_port()
    services = _use(app_module, base_url=f"http://127.0.0.1:{port}/v1")
    services.directory.recheck_s = 0.05
    await app_module.start()
    greeting = context.send_step.call_args_list[0].args[0]
    assert greeting["type"] == "system_message"  # the starters stay visible above it
    assert greeting["output"].count("No model server found") == 1
    watcher = cl.user_session.get("watcher")
    assert watcher is not None and not watcher.done()
    watcher.cancel()
    with FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], port=port):
        await asyncio.wait_for(announce_when_a_server_appears(services, every_s=0.05, for_s=10), timeout=15)
    announcement = context.send_step.call_args_list[-1].args[0]["output"]
    assert announcement.startswith("A model server is up. Connected models:") and "phi-4-mini" in announcement


async def test_a_pasted_note_that_answers_the_question_gets_phi_4_minis_draft(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer
) -> None:
    # Issue 24: a 129-word note asked about nearly word for word showed "support 12%" and went straight
    # to gpt-oss-20b ("retrieval support too weak for a draft"). Text the user chose is not judged.
    import chainlit as cl

    note = ("The facilities team met on Tuesday to plan the move of the east warehouse. The new site opens "
            "on the third of March, and the loading bay will be staffed from seven in the morning until six "
            "in the evening. Forklift drivers must complete the refresher course before the move; the course "
            "runs twice a week in the training room next to the canteen. Pallets that are damaged go back to "
            "the supplier, not into the skip. The old racking is sold to a dealer in Leeds who collects it in "
            "April. Parking at the new site is limited: staff who live within two miles are asked to cycle or "
            "walk, and the company will pay for a bicycle service once a year. Questions go to Priya in the "
            "facilities office.")
    assert len(note.split()) == 131  # about the length of the note in the issue
    server.replies["phi-4-mini"] = Reply(content=["The new site opens on the third of March [1]."])
    _use(app_module, base_url=server.url)
    await app_module.answer(cl.Message(content=f"/paste {note}\n\nWhen does the new site open?"))
    names = _sent_step_names(context)
    assert any(n.startswith("retrieve · your documents · ") for n in names), names
    assert not any("support too weak" in n or "weak retrieval support" in n for n in names)
    assert [r["model"] for r in server.requests] == ["phi-4-mini"]  # the draft stood: no escalation
    assert _final_content(context).startswith("The new site opens on the third of March")


async def test_pasted_text_grounds_the_answer_and_is_saved_only_on_request(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    import chainlit as cl

    corpus = _corpus_copy(tmp_path, app_module, server)
    report = "\n\n".join(f"Section {i}. The okapi survey counted {i * 7} animals in zone {i}." for i in range(60))
    await app_module.start()
    await app_module.answer(cl.Message(content=report + "\n\nHow many animals were counted in zone 12?"))
    prompt = server.requests[-1]["messages"][-1]["content"]
    assert 'document="pasted text.md"' in prompt and "counted 84 animals in zone 12" in prompt
    assert "Question: How many animals were counted in zone 12?" in prompt
    assert not (corpus / "uploads").exists()  # nothing written
    sources = _elements(context, "Sources")[-1]["props"]["sources"]
    assert {s["location"].split(" › ")[0] for s in sources} == {"pasted text.md"}
    conversation = cl.user_session.get("conversation")
    assert conversation.exchanges[-1].question == "How many animals were counted in zone 12?"

    # /paste without a question: kept for the next question only.
    await app_module.answer(cl.Message(content="/paste Zebras sleep standing up, the keeper said."))
    assert "Ask your question about it next." in context.send_step.call_args_list[-1].args[0]["output"]
    await app_module.answer(cl.Message(content="How do zebras sleep?"))
    assert "Zebras sleep standing up" in server.requests[-1]["messages"][-1]["content"]
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert "Zebras" not in server.requests[-1]["messages"][-1]["content"]  # used once

    await app_module.save_paste(cl.Action(name="save_paste", payload={"text": "Zebras sleep standing up."}))
    saved = list((corpus / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("pasted-text-")


async def test_an_unsupported_draft_is_escalated_and_the_step_says_why(app_module: ModuleType, context: Mock,
                                                                         server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["Ollama requires a Kubernetes cluster with three replicas ",
                                                  "and OAuth tokens kept in Redis [1]."])
    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    names = _sent_step_names(context)
    assert any(re.match(r"retrieve · support (\d+)% · ", n) and int(re.findall(r"\d+", n)[0]) >= 40 for n in names)
    assert any(n.startswith("escalate → gpt-oss-20b: draft poorly supported") for n in names)
    assert "gpt-oss-20b · auto mode" in _final_content(context)


async def test_an_off_topic_question_is_refused_or_answered_labelled(app_module: ModuleType, context: Mock,
                                                                       server: FakeOpenAIServer) -> None:
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="How do I bake sourdough bread?"))
    assert any(n.startswith("off topic · ") for n in _sent_step_names(context))
    content = _final_content(context)
    assert content.startswith("Your documents do not cover this question") and "RAG" not in content
    step = next(c.args[0] for c in context.send_step.call_args_list if c.args[0]["name"].startswith("off topic · "))
    assert "OFF\\_TOPIC=general" in step["output"]  # the setting is for an administrator: in the step
    assert server.requests == []  # no model was asked

    server.replies["gpt-oss-20b"] = Reply(content=["Mix flour, water ", "and starter; bake hot."])
    _use(app_module, base_url=server.url, off_topic="general")
    await app_module.start()
    await app_module.answer(cl.Message(content="How do I bake sourdough bread?"))
    content = _final_content(context)
    assert content.startswith("**Not from your documents** (general knowledge):")
    assert "Mix flour, water and starter; bake hot." in content and "gpt-oss-20b" in content


SEED_MR = SHARED_DATA / "seeds" / "workshop-session04.mr.md"


@pytest.mark.skipif(not SEED_MR.exists(), reason=f"the Marathi seed page is not at {SEED_MR}")
async def test_a_marathi_reader_uploads_the_marathi_page_and_gets_the_right_section(
    app_module: ModuleType, context: Mock, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    import chainlit as cl

    corpus = _corpus_copy(tmp_path, app_module, server)
    await app_module.answer(cl.Message(content="", elements=[_element(SEED_MR, "सत्र-४.md")]))
    (stored,) = list((corpus / "uploads").iterdir())
    server.replies["phi-4-mini"] = Reply(content=["venv सक्रिय करा आणि डिप्स ", "पुन्हा स्थापित करा [1]."])
    await app_module.answer(cl.Message(content="Chainlit रिक्त दिसत असेल तर काय करावे?"))
    prompt = server.requests[-1]["messages"][-1]["content"]
    first = prompt.split("<source ")[1]
    assert f'document="uploads/{stored.name}"' in first and "समस्या निवारण" in first
    assert "Answer in the language of the question" in server.requests[-1]["messages"][0]["content"]
    content = _final_content(context)
    assert content.startswith("venv सक्रिय करा आणि डिप्स पुन्हा स्थापित करा") and "phi-4-mini · auto mode" in content


def _after(emitter: Mock, start: int) -> list[Any]:
    """The emitter's calls from index `start` on, as (name, first argument)."""
    return [(c[0], c[1][0] if c[1] else None) for c in emitter.mock_calls[start:]]


async def test_a_fast_models_first_text_goes_out_before_the_steps(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    """Issue 25: every update before the first text cost the page a render growing with the conversation;
    a model whose first token comes within the hold gets its text on screen first, then the steps."""
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "uses ", "port ", "11434 [1]."], delay_first=0.05)
    services = _use(app_module, base_url=server.url)
    await preload(services)  # as start-up does: the first token comes well within the hold
    await app_module.start()
    start = len(context.mock_calls)
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    calls = _after(context, start)
    first_text = [name for name, _ in calls].index("stream_start")
    assert [name for name, _ in calls[:first_text] if name in ("send_step", "update_step", "send_element")] == []
    sent = [arg["name"] for name, arg in calls[first_text:] if name == "send_step"]
    assert [n.split(" · ")[0] for n in sent[:4]] == ["latency", "retrieve", "build prompt", "phi-4-mini"]
    assert any(n.startswith("escalate → gpt-oss-20b: draft too short") for n in sent)  # and everything after, as before


async def test_a_slow_model_shows_its_steps_and_status_while_it_is_waited_for(app_module: ModuleType, context: Mock, server: FakeOpenAIServer) -> None:
    import chainlit as cl

    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "uses ", "port ", "11434 [1]."], delay_first=1.3)
    _use(app_module, base_url=server.url)
    await app_module.start()
    start = len(context.mock_calls)
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    calls = _after(context, start)
    first_text = [name for name, _ in calls].index("stream_start")
    before = calls[:first_text]
    assert [arg["name"].split(" · ")[0] for name, arg in before if name == "send_step" and arg["type"] != "assistant_message"][:4] == \
        ["latency", "retrieve", "build prompt", "phi-4-mini"]
    statuses = [arg["output"] for name, arg in before if name in ("send_step", "update_step") and arg["type"] == "assistant_message"]
    assert any("phi-4-mini is reading the question and sources" in s for s in statuses)  # the bubble is never blank
    assert any(name == "update_step" and arg["name"].startswith("phi-4-mini · waiting for first token · 1 s")
               for name, arg in before)  # the live title ticks


async def test_start_up_loads_what_the_first_question_would(server: FakeOpenAIServer) -> None:
    """Issue 25: the first question of the app's life took ~150 ms more than the next (tokenizer,
    search path, model clients); `preload` loads them at start-up."""
    from rag.llm.tokens import get_tokenizer

    services = build_services(Settings(_env_file=None, corpus_dir=REPO / "docs_corpus", base_url=server.url))
    services.retriever.warm_up()
    get_tokenizer.cache_clear()
    try:
        await preload(services)
        assert get_tokenizer.cache_info().currsize == 1
        assert sorted(m.alias for m in services.directory._models.values()) == ["gpt-oss-20b", "phi-4-mini"]
        assert server.requests == []  # nothing was asked of a model
    finally:
        await services.aclose()
