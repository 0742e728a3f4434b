"""Conversations that last, in Chromium: reload and reopen from the sidebar with memory; password sign-in
with two users who each see only their own conversations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.fakes.appserver import free_port, start_app, stop
from tests.browser.conftest import Stack, shot, stored_thread
from tests.browser.test_chat_browser import ask
from tests.conftest import REPO

pytestmark = pytest.mark.browser


def _prompt_text(stack: Stack) -> str:
    """Everything the model was sent in the latest request."""
    request = stack.fake.log()["last_request"]
    return json.dumps(request["messages"], ensure_ascii=False)


def _open_from_sidebar(page, title: str) -> None:
    page.locator("a[href^='/thread/']", has_text=title).first.click()
    page.wait_for_selector("#chat-input", timeout=30_000)


def _latency_steps(page) -> list[str]:
    """aria-expanded of each answer's latency step, in order."""
    return page.evaluate("() => [...document.querySelectorAll('button[aria-expanded]')].filter(b => "
                         "/latency · retrieve/.test(b.innerText)).map(b => b.getAttribute('aria-expanded'))")


def test_a_reopened_conversation_shows_its_cited_pdf_pages_again(page, stack: Stack, tmp_path: Path) -> None:
    """Issue 26 (10): the cited PDF pages were gone when the conversation was reopened."""
    from rag.fakes.samples import make_pdf
    from tests.browser.conftest import attach

    pdf = tmp_path / "pangolin-notes.pdf"
    pdf.write_bytes(make_pdf(["Pangolins eat ants.", "Pangolins roll into a ball when scared."]))
    stack.fake.script(**{m: {"content": ["They eat ants [1] and roll into a ball [2]."]} for m in ("phi-4-mini", "gpt-oss-20b")})
    attach(page, [pdf])
    ask(page, "What do pangolins do?")
    answer = "() => document.querySelectorAll('.step[data-step-type=assistant_message] .inline-pdf canvas').length"
    page.wait_for_function(f"({answer})() >= 2", timeout=20_000)
    page.reload()
    page.wait_for_selector("#chat-input", timeout=30_000)
    _open_from_sidebar(page, "What do pangolins do?")
    page.wait_for_function(f"({answer})() >= 2", timeout=30_000)  # both pages drawn again, from the corpus file
    labels = page.locator(".step[data-step-type=assistant_message] .inline-pdf").all_inner_texts()
    assert [t.split(" page ")[0].strip() for t in labels] == ["[1]", "[2]"], labels
    # The link serves only PDFs of the corpus.
    assert page.request.get(f"{stack.app_url}/corpus-file/uploads/{labels[0].split(' · ')[-1].strip()}").ok
    for bad in ("..%2Fapp.log", "servers/ollama.md", "..%2F..%2F..%2Fetc%2Fpasswd.pdf", "%2Fetc%2Fpasswd.pdf"):
        assert page.request.get(f"{stack.app_url}/corpus-file/{bad}").status == 404, bad
    stack.fake.script()
    for path in (stack.corpus / "uploads").iterdir():
        if path.name.startswith("pangolin-notes"):
            path.unlink()
    assert "phi-4-mini" in ask(page, "Which port does LM Studio use?")  # the next question is answered


def test_reload_reopen_from_the_sidebar_and_follow_up_with_memory(page, stack: Stack) -> None:
    first = ask(page, "Which port does LM Studio listen on?")
    assert "total" in first
    page.reload()
    page.wait_for_selector("#chat-input", timeout=30_000)
    page.wait_for_selector("a[href^='/thread/']", timeout=30_000)
    _open_from_sidebar(page, "Which port does LM Studio listen on?")
    page.wait_for_function("() => document.body.innerText.includes('Sources (')", timeout=30_000)
    body = page.inner_text("body")
    assert "Which port does LM Studio listen on?" in body and "Latency this session" in body  # sources and chart too
    assert _latency_steps(page) == ["true"]  # the latest answer's latency step comes back open, with the chart
    ask(page, "and is that configurable?")
    prompt = _prompt_text(stack)
    assert "Which port does LM Studio listen on?" in prompt  # the earlier turn is in the follow-up's prompt
    # As without the reload: the earlier answer's step closed, one chart, moved into the newest answer.
    page.wait_for_function("() => !document.querySelector('#stop-button')", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('button[aria-expanded]')].filter(b => "
                           "/latency · retrieve/.test(b.innerText)).map(b => b.getAttribute('aria-expanded')).join() === 'false,true'",
                           timeout=10_000)
    assert page.locator(".latency-chart").count() == 1
    shot(page, "history-resumed")


@pytest.fixture(scope="module")
def password_app(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second app on the same corpus with RAG_AUTH=password and two users."""
    root = tmp_path_factory.mktemp("password-app")
    env = {"RAG_AUTH": "password", "RAG_DATA_DIR": str(root / "data"), "RAG_CORPUS_DIR": str(stack.corpus)}
    for name in ("alice", "bob"):
        subprocess.run([sys.executable, "-m", "rag.cli.main", "users", "add", name, "--password-stdin"], input=f"{name}-password\n",
                       text=True, check=True, cwd=REPO, env={**__import__("os").environ, **env}, capture_output=True)
    port = free_port()
    app = start_app(stack.corpus, stack.fake.url, port, root / "app.log", **env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(app)


def _signed_in(browser, url: str, name: str, password: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("input[name=email], #email", timeout=30_000)
    page.fill("#email", name)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_selector("#chat-input", timeout=30_000)
    return context, page


def test_two_users_each_see_only_their_own_conversations(browser, stack: Stack, password_app: str) -> None:
    stack.fake.script()
    wrong_context, wrong = browser.new_context(), None
    wrong = wrong_context.new_page()
    wrong.goto(password_app)
    wrong.wait_for_selector("#email", timeout=30_000)
    wrong.fill("#email", "alice")
    wrong.fill("#password", "not-her-password")
    wrong.get_by_role("button", name="Sign In").click()
    wrong.wait_for_load_state("networkidle", timeout=15_000)  # the sign-in request has been answered
    assert wrong.query_selector("#chat-input") is None  # still on the sign-in form
    wrong.get_by_text("Wrong name or password.").first.wait_for(timeout=10_000)  # issue 26: in words
    assert "credentialssignin" not in wrong.inner_text("body").lower()
    wrong_context.close()

    alice_context, alice = _signed_in(browser, password_app, "alice", "alice-password")
    ask(alice, "Alice asks which port Ollama uses")
    bob_context, bob = _signed_in(browser, password_app, "bob", "bob-password")
    ask(bob, "Bob asks about LM Studio")
    for page, own, other in ((alice, "Alice asks", "Bob asks"), (bob, "Bob asks", "Alice asks")):
        page.reload()
        page.wait_for_selector("a[href^='/thread/']", timeout=30_000)
        titles = [a.inner_text() for a in page.query_selector_all("a[href^='/thread/']")]
        assert any(own in t for t in titles) and not any(other in t for t in titles), titles
    # Bob cannot open Alice's conversation by its address either.
    alice_thread = alice.locator("a[href^='/thread/']", has_text="Alice asks").first.get_attribute("href")
    bob.goto(password_app + str(alice_thread))
    bob.wait_for_load_state("networkidle", timeout=15_000)  # the conversation was asked for and refused
    assert "Alice asks which port Ollama uses" not in bob.inner_text("body")
    # Issue 26: the same answer as for a made-up id, and no dead end: not "Could not reach the server"
    # with sending disabled and the settings hidden until New chat.
    bob.wait_for_selector("text=Thread not found", timeout=15_000)
    assert "Could not reach the server" not in bob.inner_text("body")
    bob.wait_for_selector("#chat-settings-open-modal", timeout=15_000)
    shot(bob, "history-other-user")
    assert "Alice asks" not in ask(bob, "Bob asks again about LM Studio")
    alice_context.close()
    bob_context.close()


def _fresh_page(browser, url: str, ready: str):
    """A new browser profile on `url`, once `ready` shows."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(ready, timeout=30_000)
    return context, page


def test_history_survives_a_restart_of_the_app(browser, stack: Stack, tmp_path: Path) -> None:
    """Close the browser, stop the app, start it again on the same data folder: the conversation is there."""
    corpus = tmp_path / "corpus"
    shutil.copytree(stack.corpus, corpus)
    data = tmp_path / "data"
    port = free_port()
    app = start_app(corpus, stack.fake.url, port, tmp_path / "app1.log", RAG_DATA_DIR=str(data))
    url = f"http://127.0.0.1:{port}"
    try:
        context, page = _fresh_page(browser, url, "#chat-input")
        ask(page, "Where does Foundry Local listen?")
        stored_thread(page, url, "Where does Foundry Local listen?")
        context.close()
    finally:
        stop(app)
    app = start_app(corpus, stack.fake.url, port, tmp_path / "app2.log", RAG_DATA_DIR=str(data))
    try:
        context, page = _fresh_page(browser, url, "a[href^='/thread/']")
        _open_from_sidebar(page, "Where does Foundry Local listen?")
        page.wait_for_function("() => document.body.innerText.includes('Sources (')", timeout=30_000)
        ask(page, "and how do I find that port?")
        assert "Where does Foundry Local listen?" in _prompt_text(stack)
        context.close()
    finally:
        stop(app)
