"""`rag bench history`: how long a stored conversation takes to come back, in the real app and Chromium.

Asks N questions in one conversation (2N messages, each answer with its steps, sources and the latency
chart), then reopens it from the sidebar R times: each time from a fresh page load to every answer of the
conversation on screen. Also times the answers themselves, so a run with history off is the comparison.

With `bare`, bare Chainlit does the same beside it, in the same run: one `on_message` streaming the same
server's reply, Chainlit's own SQLAlchemy data layer on SQLite (the same schema), no steps, no elements:
what reopening a thread of the same number of messages costs in Chainlit itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.bench.conversation import start_bare, stop_bare, wait_http
from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply
from rag.bench.ui import CHROMIUM, CHROMIUM_ARGS
from rag.metrics import percentile

_FOOTERS = "() => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]" \
           ".filter(e => /(ms|s) total/.test(e.textContent)).length"
# Bare Chainlit's answers have no footer: counted by the reply's last words.
_BARE_ANSWERS = "() => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]" \
                ".filter(e => e.textContent.includes('by default [1].')).length"

# The reference: a Chainlit app that keeps its conversations, and nothing else.
BARE_APP = '''
import os
import chainlit as cl
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from openai import AsyncOpenAI

client = AsyncOpenAI(base_url=os.environ["BARE_MODEL_URL"], api_key="not-needed")


@cl.data_layer
def history() -> SQLAlchemyDataLayer:
    return SQLAlchemyDataLayer(conninfo=os.environ["BARE_DATABASE_URL"])


@cl.header_auth_callback
def local(headers) -> cl.User:
    return cl.User(identifier="local")


@cl.on_chat_resume
async def resume(thread) -> None:
    pass


@cl.on_message
async def answer(message: cl.Message) -> None:
    reply = cl.Message(content="")
    stream = await client.chat.completions.create(
        model="phi-4-mini", messages=[{"role": "user", "content": message.content}], stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            await reply.stream_token(chunk.choices[0].delta.content)
    await reply.send()
'''


@dataclass(frozen=True)
class HistoryReport:
    """Answer times while the conversation grows, and the time to reopen it."""

    questions: int
    messages: int
    answer_p50_ms: float
    answer_p95_ms: float
    resume_runs_ms: list[float]
    resume_median_ms: float
    bare_answer_p50_ms: float | None = None
    bare_resume_runs_ms: list[float] = field(default_factory=list)
    bare_resume_median_ms: float | None = None

    @property
    def resume_vs_bare(self) -> float | None:
        """The median of app / bare over reopenings taken in turn (steadier than a ratio of two medians)."""
        pairs = [a / b for a, b in zip(self.resume_runs_ms, self.bare_resume_runs_ms) if b > 0]
        return round(statistics.median(pairs), 2) if pairs else None


def _ask(page: Any, text: str, answers: str = _FOOTERS, timeout_ms: float = 60_000) -> float:
    before = page.evaluate(answers)
    page.fill("#chat-input", text)
    page.wait_for_selector("#chat-submit:not([disabled])", timeout=timeout_ms)
    # A composer re-rendered between the fill and the click (a chat still starting) comes back empty, with
    # the send button disabled: type the question again rather than wait on a button that stays disabled.
    for _ in range(3):
        if page.input_value("#chat-input") == text and page.is_enabled("#chat-submit"):
            break
        page.fill("#chat-input", text)
        page.wait_for_selector("#chat-submit:not([disabled])", timeout=timeout_ms)
    started = time.perf_counter()
    page.click("#chat-submit")
    page.wait_for_function(f"n => ({answers})() > n", arg=before, timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('#stop-button')", timeout=timeout_ms)  # stored by now
    return (time.perf_counter() - started) * 1000


def _fill(browser: Any, url: str, questions: int, answers: str) -> tuple[Any, list[float]]:
    """A page holding one conversation of `questions` answers, and each answer's time."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.wait_for_selector("#chat-input", timeout=60_000)
    if answers == _FOOTERS:  # the app's chat has started once it has greeted (bare Chainlit does not greet)
        page.wait_for_function("() => document.body.innerText.includes('Answering from')", timeout=60_000)
    return page, [_ask(page, f"Question {i + 1}: which port does Ollama use?", answers) for i in range(questions)]


def _reopen(page: Any, url: str, questions: int, answers: str) -> float:
    """Reopen the page's conversation from the sidebar of a fresh page load: ms to every answer on screen."""
    page.goto(url)
    page.wait_for_selector("a[href^='/thread/']", timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=60_000)  # the new chat's start is not timed as the reopening
    started = time.perf_counter()
    page.locator("a[href^='/thread/']").first.click()
    page.wait_for_function(f"n => ({answers})() >= n", arg=questions, timeout=120_000)
    return round((time.perf_counter() - started) * 1000, 1)


def _start_bare(folder: Path, model_url: str, port: int) -> subprocess.Popen[bytes]:
    """Bare Chainlit with its own SQLAlchemy data layer on a SQLite file of the app's schema."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from rag.chat.history import migrate

    url = f"sqlite+aiosqlite:///{(folder / 'bare.db').resolve()}"

    async def schema() -> None:
        engine = create_async_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(schema())
    return start_bare(folder, BARE_APP, port, folder / "bare.log", BARE_MODEL_URL=model_url, BARE_DATABASE_URL=url,
                      CHAINLIT_AUTH_SECRET="bench-" + "x" * 40)


def run_history_bench(questions: int = 25, resumes: int = 5, history: bool = True, bare: bool = False) -> HistoryReport:
    """Start a fake server and the real app (history on, SQLite), fill a conversation, reopen it.
    With `history` off only the answers are timed (the comparison: what history adds to them); with
    `bare`, bare Chainlit with its own data layer does the same in the same run."""
    from playwright.sync_api import sync_playwright

    reply = Reply(content=["Ollama ", "listens ", "on ", "port ", "11434 ", "by ", "default ", "[1]."], delay_between=0.005)
    with tempfile.TemporaryDirectory(prefix="rag-bench-history-") as tmp, \
            FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], {"phi-4-mini": reply, "gpt-oss-20b": reply}) as fake:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        port = free_port()
        app = start_app(corpus, fake.url, port, Path(tmp) / "app.log", RAG_HISTORY=str(history).lower())
        reference = None
        if bare and history:
            (Path(tmp) / "bare").mkdir()
            bare_port = free_port()
            reference = _start_bare(Path(tmp) / "bare", fake.url, bare_port)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page, answers = _fill(browser, f"http://127.0.0.1:{port}", questions, _FOOTERS)
                bare_page: Any = None
                bare_answers: list[float] = []
                if reference is not None:
                    wait_http(f"http://127.0.0.1:{bare_port}")
                    bare_page, bare_answers = _fill(browser, f"http://127.0.0.1:{bare_port}", questions, _BARE_ANSWERS)
                # The app's and bare Chainlit's reopenings in turn, which goes first alternating: a machine
                # busy for a while slows both, so their ratio holds (one after the other, it swung x0.9 to x1.5).
                resumes_ms: list[float] = []
                bare_ms: list[float] = []
                sides = [(resumes_ms, page, port, _FOOTERS)]
                if bare_page is not None:
                    sides.append((bare_ms, bare_page, bare_port, _BARE_ANSWERS))
                for turn in range(resumes if history else 0):
                    for times, reopened, at, shown in sides if turn % 2 == 0 else sides[::-1]:
                        times.append(_reopen(reopened, f"http://127.0.0.1:{at}", questions, shown))
                browser.close()
        finally:
            stop(app)
            if reference is not None:
                stop_bare(reference)
    return HistoryReport(questions, 2 * questions, round(percentile(answers, 50), 1), round(percentile(answers, 95), 1),
                         resumes_ms, round(statistics.median(resumes_ms), 1) if resumes_ms else 0.0,
                         round(percentile(bare_answers, 50), 1) if bare_answers else None, bare_ms,
                         round(statistics.median(bare_ms), 1) if bare_ms else None)


def report_json(report: HistoryReport) -> str:
    return json.dumps({**asdict(report), "resume_vs_bare": report.resume_vs_bare})


def report_text(r: HistoryReport) -> str:
    answers = (f"{r.questions} questions ({r.messages} messages) in one conversation: answer p50 {r.answer_p50_ms:.0f} ms, "
               f"p95 {r.answer_p95_ms:.0f} ms")
    if not r.resume_runs_ms:
        return answers + " (history off)"
    text = (answers + "\n"
            f"reopened from the sidebar {len(r.resume_runs_ms)} times: median {r.resume_median_ms:.0f} ms "
            f"({', '.join(f'{ms:.0f}' for ms in r.resume_runs_ms)} ms) to every answer on screen")
    if r.bare_resume_median_ms is not None:
        text += (f"\nbare Chainlit, same run (its own data layer; answer p50 {r.bare_answer_p50_ms:.0f} ms): reopened "
                 f"{len(r.bare_resume_runs_ms)} times: median {r.bare_resume_median_ms:.0f} ms "
                 f"({', '.join(f'{ms:.0f}' for ms in r.bare_resume_runs_ms)} ms)")
        if r.resume_vs_bare is not None:
            text += f"\nthe app's reopening / bare Chainlit's, each pair taken in turn: median x{r.resume_vs_bare:.2f}"
    return text
