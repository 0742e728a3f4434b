"""The real app in real Chromium: `chainlit run app.py --headless` against the fake model server in its own
process. Skipped only where Debian's Chromium is not installed (`.ci/run` installs it)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.fakes.appserver import free_port, start_app, stop
from rag.bench.ui import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import REPO

SHOTS = REPO / "tests" / "browser" / "screenshots"

pytestmark = pytest.mark.browser


@dataclass
class FakeProcess:
    """The fake OpenAI-compatible server as a separate process, restartable on the same port."""

    port: int
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag.fakes.openai_server", "--port", str(self.port)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("READY"), line

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def script(self, **models: Mapping[str, object]) -> None:
        """Replace the replies: script(**{"phi-4-mini": {"content": [...], "delay_between": 0.1}})."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/_script", data=json.dumps(models).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def log(self) -> dict[str, Any]:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=5).read())


@dataclass
class Stack:
    app_url: str
    fake: FakeProcess
    corpus: Path


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("browser")
    corpus = root / "corpus"
    shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
    fake = FakeProcess(free_port())
    fake.start()
    port = free_port()
    app = start_app(corpus, fake.url, port, root / "app.log")
    try:
        yield Stack(f"http://127.0.0.1:{port}", fake, corpus)
    finally:
        stop(app)
        fake.kill()


@pytest.fixture(scope="module")  # Playwright's sync API runs an event loop on this thread while open:
def browser() -> Iterator[object]:  # close it with the module so later async tests can run their own
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, stack: Stack):
    stack.fake.script()  # default replies for every model
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(stack.app_url)
    page.wait_for_selector("#chat-input", timeout=30_000)
    page.wait_for_function("() => document.body.innerText.includes('Answering from')", timeout=30_000)  # the greeting
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def attach(page, paths: list[Path]) -> None:
    """Attach files to the next message, once each shows in the composer. The send button stays disabled
    until every upload has finished, and `send` waits for it, so nothing waits a fixed time."""
    page.set_input_files("#upload-button-input", [str(p) for p in paths])
    page.wait_for_function("names => names.every(n => document.body.innerText.includes(n))",
                           arg=[p.name for p in paths], timeout=30_000)


def answer_sources(page, timeout: float = 20_000):
    """The sources list under the latest answer, once it has rendered. The list is a custom element that the
    page compiles after the answer's text arrives, so it can show a moment later, more so on a slow machine:
    wait for it inside the answer itself, never take `.sources-list` `.last` (that may be an earlier answer's)."""
    page.wait_for_function(
        "() => { const done = [...document.querySelectorAll('.step[data-step-type=assistant_message]')]"
        ".filter(e => /(ms|s) total/.test(e.innerText)).pop();"
        " return !!(done && done.querySelector('.sources-list .source-item')); }", timeout=timeout)
    return page.locator(".step[data-step-type=assistant_message]").filter(
        has_text=re.compile(r"(ms|s) total")).last.locator(".sources-list")


def stored_thread(page, base: str, text: str, timeout_s: float = 60.0) -> str:
    """The id of the page's conversation once the app has stored `text` in it. History is written in the
    background: ask the app (its own API, with the page's sign-in) rather than waiting a fixed time."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        thread = page.url.split("/thread/")[-1] if "/thread/" in page.url else None
        if thread is None and page.locator("a[href^='/thread/']").count():
            thread = str(page.locator("a[href^='/thread/']").first.get_attribute("href")).split("/thread/")[-1]
        if thread:
            response = page.request.get(f"{base}/project/thread/{thread}")
            if response.ok and text in response.text():
                return thread
        if time.monotonic() > deadline:
            raise AssertionError(f"the conversation holding {text!r} was not stored within {timeout_s:g} s")
        page.wait_for_timeout(200)
