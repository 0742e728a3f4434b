"""`rag bench history`: how long a stored conversation takes to come back, in the real app and Chromium.

Asks N questions in one conversation (2N messages, each answer with its steps, sources and the latency
chart), then reopens it from the sidebar R times: each time from a fresh page load to every answer of the
conversation on screen. Also times the answers themselves, so a run with history off is the comparison.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply
from rag.bench.ui import CHROMIUM, CHROMIUM_ARGS
from rag.metrics import percentile

_FOOTERS = "() => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]" \
           ".filter(e => /(ms|s) total/.test(e.textContent)).length"


@dataclass(frozen=True)
class HistoryReport:
    """Answer times while the conversation grows, and the time to reopen it."""

    questions: int
    messages: int
    answer_p50_ms: float
    answer_p95_ms: float
    resume_runs_ms: list[float]
    resume_median_ms: float


def _ask(page: Any, text: str, timeout_ms: float = 60_000) -> float:
    before = page.evaluate(_FOOTERS)
    page.fill("#chat-input", text)
    page.wait_for_selector("#chat-submit:not([disabled])", timeout=timeout_ms)
    started = time.perf_counter()
    page.click("#chat-submit")
    page.wait_for_function(f"n => ({_FOOTERS})() > n", arg=before, timeout=timeout_ms)
    return (time.perf_counter() - started) * 1000


def run_history_bench(questions: int = 25, resumes: int = 3, history: bool = True) -> HistoryReport:
    """Start a fake server and the real app (history on, SQLite), fill a conversation, reopen it.
    With `history` off only the answers are timed (the comparison: what history adds to them)."""
    from playwright.sync_api import sync_playwright

    reply = Reply(content=["Ollama ", "listens ", "on ", "port ", "11434 ", "by ", "default ", "[1]."], delay_between=0.005)
    with tempfile.TemporaryDirectory(prefix="rag-bench-history-") as tmp, \
            FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], {"phi-4-mini": reply, "gpt-oss-20b": reply}) as fake:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = start_app(corpus, fake.url, port, Path(tmp) / "app.log", RAG_HISTORY=str(history).lower())
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_selector("#chat-input", timeout=60_000)
                answers = [_ask(page, f"Question {i + 1}: which port does Ollama use?") for i in range(questions)]
                resumes_ms = []
                for _ in range(resumes if history else 0):
                    page.goto(url)
                    page.wait_for_selector("a[href^='/thread/']", timeout=60_000)
                    started = time.perf_counter()
                    page.locator("a[href^='/thread/']").first.click()
                    page.wait_for_function(f"n => ({_FOOTERS})() >= n", arg=questions, timeout=120_000)
                    resumes_ms.append(round((time.perf_counter() - started) * 1000, 1))
                browser.close()
        finally:
            stop(app)
    return HistoryReport(questions, 2 * questions, round(percentile(answers, 50), 1), round(percentile(answers, 95), 1),
                         resumes_ms, round(statistics.median(resumes_ms), 1) if resumes_ms else 0.0)


def report_json(report: HistoryReport) -> str:
    return json.dumps(asdict(report))


def report_text(r: HistoryReport) -> str:
    answers = (f"{r.questions} questions ({r.messages} messages) in one conversation: answer p50 {r.answer_p50_ms:.0f} ms, "
               f"p95 {r.answer_p95_ms:.0f} ms")
    if not r.resume_runs_ms:
        return answers + " (history off)"
    return (answers + "\n"
            f"reopened from the sidebar {len(r.resume_runs_ms)} times: median {r.resume_median_ms:.0f} ms "
            f"({', '.join(f'{ms:.0f}' for ms in r.resume_runs_ms)} ms) to every answer on screen")
