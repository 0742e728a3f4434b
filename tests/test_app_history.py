"""Follow-ups keep their history in every mode (a regression found by the load benchmark)."""

import json
import shutil
from pathlib import Path
from unittest.mock import Mock

import pytest

from tests.conftest import REPO
from rag.fakes.openai_server import FakeOpenAIServer
from tests.test_app import _element, _use, app_module, context, server  # noqa: F401 - fixtures


FOLLOW_UP = ("query: `'and what about LM Studio?'` / a follow-up: searched with what it follows, at 50% weight: "
             "`'Which port does Ollama use?'`")


def _last_query(context: Mock) -> str:
    """The retrieval query of the latest answer, as its retrieve step shows it (with the previous question
    when it is a follow-up)."""
    queries = [" / ".join(c.args[0]["output"].splitlines()[:2]) for c in context.send_step.call_args_list
               if str(c.args[0].get("output", "")).startswith("query: ")]
    return queries[-1]


@pytest.mark.parametrize("mode", ["auto", "small", "large", "compare"])
async def test_follow_up_uses_this_sessions_history_in_every_mode(app_module, context: Mock, server: FakeOpenAIServer, mode: str) -> None:  # noqa: F811
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": mode})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    await app_module.answer(cl.Message(content="and what about LM Studio?"))
    assert _last_query(context) == FOLLOW_UP


async def test_a_chain_of_follow_ups_shows_its_questions_one_after_the_other(app_module, context: Mock, server: FakeOpenAIServer) -> None:  # noqa: F811
    """The retrieve step showed a chain as one string with a literal "\\n" between the questions (a
    first-contact walk); now each question, oldest first."""
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    for question in ("Which port does Ollama use?", "and what about LM Studio?", "shorter please"):
        await app_module.answer(cl.Message(content=question))
    assert _last_query(context) == ("query: `'shorter please'` / a follow-up: searched with what it follows, at 50% "
                                    "weight: `'Which port does Ollama use?' → 'and what about LM Studio?'`")


async def test_a_resumed_conversation_answers_follow_ups_with_its_earlier_turns_and_settings(app_module, context: Mock, server: FakeOpenAIServer) -> None:  # noqa: F811
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": "small", "top_k": 3})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    from rag.chat import conversation as chat
    from rag.ui.state import session_stats

    stored = {"rag_conversation": chat.to_dict(cl.user_session.get("conversation")), "rag_stats": session_stats().to_dict()}

    cl.context.session.id = "session-after-reload"  # a new browser session: nothing in memory
    assert cl.user_session.get("conversation") is None
    await app_module.resume({"id": "thread-1", "metadata": json.dumps(stored), "steps": [], "elements": []})
    conversation = cl.user_session.get("conversation")
    assert [e.question for e in conversation.exchanges] == ["Which port does Ollama use?"]
    assert (conversation.choices.mode, conversation.choices.top_k) == ("small", 3)
    assert len(session_stats().records) == 1  # /stats and the chart go on from where they were
    panel = [c.args[1] for c in context.emit.call_args_list if c.args[0] == "chat_settings"][-1]
    initial = {w["id"]: w.get("initial", w.get("initial_value")) for w in panel}
    assert (initial["mode"], initial["top_k"]) == ("small", 3)  # the settings panel shows the conversation's choices
    await app_module.answer(cl.Message(content="and what about LM Studio?"))
    assert _last_query(context) == FOLLOW_UP


async def test_export_gives_markdown_and_json_of_the_conversation(app_module, context: Mock, server: FakeOpenAIServer) -> None:  # noqa: F811
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    await app_module.answer(cl.Message(content="/export"))
    persist_file: Mock = cl.context.session.persist_file  # type: ignore[assignment]
    files = {c.kwargs["name"]: c.kwargs["content"] for c in persist_file.call_args_list
             if str(c.kwargs.get("name", "")).startswith("Which-port")}
    assert set(files) == {"Which-port-does-Ollama-use.md", "Which-port-does-Ollama-use.json"}
    markdown = files["Which-port-does-Ollama-use.md"].decode()
    assert "## 1. Which port does Ollama use?" in markdown and "Ollama listens on port 11434" in markdown
    assert "- \\[1\\] servers/ollama.md › Running the models with Ollama (`servers/ollama.md`, chunk 0)" in markdown
    assert "- model: phi-4-mini" in markdown and "- mode: auto" in markdown and "phi-4-mini first token" in markdown
    data = json.loads(files["Which-port-does-Ollama-use.json"])
    assert data["conversation"]["exchanges"][0]["cited"][0]["source"] == "servers/ollama.md"


async def test_only_the_uploader_or_an_admin_may_delete_an_upload(app_module, context: Mock, server: FakeOpenAIServer, tmp_path: Path) -> None:  # noqa: F811
    import chainlit as cl

    from rag.chat.auth import hash_password
    from rag.chat.history import History, migrate

    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "docs_corpus", corpus)
    svc = _use(app_module, corpus_dir=corpus, base_url=server.url, auth="password", data_dir=tmp_path / "data")
    svc.history = History.open(svc.settings)
    await migrate(svc.history.engine)
    await svc.history.put_user("alice", hash_password("password123"), "user")
    await svc.history.put_user("bob", hash_password("password123"), "user")
    session = cl.context.session

    def sign_in_as(name: str, role: str = "user") -> None:
        session.user = cl.User(identifier=name, metadata={"role": role})

    upload = tmp_path / "kiwi.md"
    upload.write_text("# Kiwi\n\nKiwis are flightless birds.")
    sign_in_as("alice")
    await app_module.answer(cl.Message(content="", elements=[_element(upload, "kiwi.md")]))
    (stored,) = list((corpus / "uploads").iterdir())
    source = f"uploads/{stored.name}"

    def delete_offered() -> bool:
        return any(c.args[0] == "action" or "delete_document" in json.dumps(c.args, default=str)
                   for c in context.emit.call_args_list if source in json.dumps(c.args, default=str))

    sign_in_as("bob")
    context.emit.reset_mock()
    await app_module.answer(cl.Message(content="/docs"))
    assert f"| `{source}` |" in context.send_step.call_args_list[-1].args[0]["output"] and not delete_offered()
    context.send_ask_user.return_value = {"name": "confirm", "payload": {"value": "delete"}, "label": "Delete"}
    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": source}))  # forged
    assert stored.exists()
    assert "was added by someone else" in context.send_step.call_args_list[-1].args[0]["output"]

    sign_in_as("bob", role="admin")  # a token claiming admin is not enough: the stored role decides
    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": source}))
    assert stored.exists()

    sign_in_as("alice")
    context.emit.reset_mock()
    await app_module.answer(cl.Message(content="/docs"))
    assert delete_offered()
    await app_module.delete_document(cl.Action(name="delete_document", payload={"source": source}))
    assert not stored.exists() and await svc.history.upload_owners() == {}

    await svc.history.remove_user("bob")
    sign_in_as("bob")
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    assert "Your account has been removed" in context.send_step.call_args_list[-1].args[0]["output"]
    await svc.history.aclose()
