"""Retake the README's screenshots: the real app in Chromium against the fake server, paced like real
models (so every figure on screen is one a real run could show). `python -m rag.bench.screenshots`."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply
from rag.bench.ui import CHROMIUM, CHROMIUM_ARGS


def _words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def script() -> dict[str, Reply]:
    """phi-4-mini drafts too briefly and escalates; gpt-oss-20b reasons, then answers with citations."""
    small = Reply(content=["11434."], delay_first=0.4)
    large = Reply(
        reasoning=_words("The question asks for Ollama's port. Source 1 says Ollama serves an OpenAI-compatible API "
                         "on port 11434 by default, and source 2 says the app probes that port. Answer with both."),
        content=_words("Ollama serves its OpenAI-compatible API on port 11434 by default [1], and the app finds it "
                       "there by itself: port 11434 is among the local ports it probes at start-up and whenever no "
                       "model was found [2]. If you run Ollama elsewhere, set RAG_BASE_URL to its /v1 address [1]."),
        delay_first=1.2, delay_between=0.07)
    return {"phi-4-mini": small, "gpt-oss-20b": large}


def compare_script() -> dict[str, Reply]:
    """Both models answer fully, at the speeds of a small and a large model."""
    small = Reply(content=_words("Ollama listens on port 11434 by default [1]; the app probes that port, so no "
                                 "setting is needed when Ollama runs on the same machine [2]."), delay_first=0.3,
                  delay_between=0.04)
    large = script()["gpt-oss-20b"]
    return {"phi-4-mini": small, "gpt-oss-20b": large}


def take(out: Path) -> list[Path]:
    """Both screenshots into `out`; returns their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory(prefix="rag-screenshots-") as tmp, FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"]) as fake:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        port = free_port()
        app = start_app(corpus, fake.url, port, Path(tmp) / "app.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                url = f"http://127.0.0.1:{port}"
                fake.replies.update(script())
                shots.append(_shoot(page, url, out / "answer-escalated.png", "escalated ·"))
                fake.replies.update(compare_script())
                shots.append(_shoot(page, url, out / "side-by-side.png", "side by side · both models", mode="Side by side"))
                browser.close()
        finally:
            stop(app)
    return shots


def _shoot(page: Any, url: str, path: Path, done: str, mode: str | None = None) -> Path:
    """A new chat, optionally in another mode, one question, a full-page screenshot once `done` shows."""
    page.goto(url)
    page.wait_for_function("() => !!document.body && document.body.innerText.includes('Answering from')", timeout=60_000)
    if mode:
        page.click("#chat-settings-open-modal")
        page.click("#mode")
        page.get_by_role("option", name=mode).click()
        page.get_by_role("button", name="Confirm").click()
    page.fill("#chat-input", "Which port does Ollama use?")
    page.click("#chat-submit")
    page.wait_for_function("text => !!document.body && document.body.innerText.includes(text)", arg=done, timeout=60_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(path), full_page=True)
    return path


def main() -> None:
    """Write the screenshots (default: public/screenshots/)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "public" / "screenshots")
    for path in take(parser.parse_args().out):
        sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
