"""Two app processes on one PostgreSQL and one corpus folder, as behind a proxy with sticky sessions:
a conversation started on the first resumes on the second with its memory, and a document uploaded
through the first is searchable through the second at its next question."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.fakes.appserver import free_port, start_app, stop
from tests.browser.conftest import Stack, attach, stored_thread
from tests.browser.test_chat_browser import ask
from tests.postgres import missing_reason, postgres_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def workers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[Any]]]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("workers")
    corpus = root / "corpus"
    shutil.copytree(stack.corpus, corpus, ignore=shutil.ignore_patterns("uploads"))
    with postgres_server() as database:
        # What a deployment shares: the database, the corpus folder and the sign-in secret.
        env = {"DATABASE_URL": database, "CHAINLIT_AUTH_SECRET": secrets.token_urlsafe(48)}
        ports = [free_port(), free_port()]
        apps = [start_app(corpus, stack.fake.url, port, root / f"worker{i}.log", RAG_DATA_DIR=str(root / f"data{i}"), **env)
                for i, port in enumerate(ports)]
        try:
            yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", apps
        finally:
            for app in apps:
                stop(app)


def _prompt(stack: Stack) -> str:
    return json.dumps(stack.fake.log()["last_request"]["messages"], ensure_ascii=False)


def test_a_conversation_and_an_upload_carry_over_to_the_other_worker(browser, stack: Stack, workers: tuple[str, str, list[Any]], tmp_path: Path) -> None:
    first, second, _ = workers
    stack.fake.script()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(first)
    page.wait_for_selector("#chat-input", timeout=30_000)
    ask(page, "Which port does Ollama use?")
    note = tmp_path / "okapi-notes.md"
    note.write_text("# Okapi field notes\n\nThe okapi census of the Ituri forest counted 4,412 okapis in 2025.\n")
    attach(page, [note])
    ask(page, "Thanks, noted.")
    # The upload is stored once this message's step says so (a fixed wait failed once on a loaded machine).
    page.wait_for_function("() => document.body.innerText.includes('okapi-notes.md added')", timeout=60_000)
    thread = stored_thread(page, first, "Thanks, noted.")

    other = context.new_page()  # the proxy sends this browser to the second process now
    other.goto(f"{second}/thread/{thread}")
    other.wait_for_function("() => document.body.innerText.includes('Which port does Ollama use?')", timeout=30_000)
    ask(other, "and what about LM Studio?")
    assert "Which port does Ollama use?" in _prompt(stack)  # memory came from the database, not the process

    ask(other, "How many okapis did the Ituri census count?")
    assert "4,412 okapis" in _prompt(stack)  # the second process searched the upload made through the first
    context.close()


def test_stopping_one_worker_leaves_the_other_serving(browser, stack: Stack, workers: tuple[str, str, list[Any]]) -> None:
    """Both run from one folder: Chainlit deletes its files folder when a server stops, which used to
    take the other process's session files with it (its next answer failed with FileNotFoundError)."""
    first, _, apps = workers
    stack.fake.script()
    context = browser.new_context()
    page = context.new_page()
    page.goto(first)
    page.wait_for_selector("#chat-input", timeout=30_000)
    ask(page, "Which port does Ollama use?")
    stop(apps[1])
    text = ask(page, "Which port does LM Studio use?")
    assert "Something went wrong" not in text and "Sources (" in page.inner_text("body")
    context.close()
