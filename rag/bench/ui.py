"""`rag bench ui`: from the model server's last token to the browser showing the whole answer.

The fake server streams N tokens (the last one a unique marker) at a fixed rate and stamps the wall-clock
time it sent the last token; in Chromium, a requestAnimationFrame loop stamps the wall-clock time the
marker first appears in the page. Same machine, same clock: the difference is the rendering lag (network
hops, Chainlit, React, token batching). Side by side, both columns must show their marker.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

_WATCH = """
([markers, selector]) => {
  window.__seen = null;
  const tick = () => {
    const text = [...document.querySelectorAll(selector)].map(e => e.textContent).join(' ');
    if (markers.every(m => text.includes(m))) { window.__seen = performance.timeOrigin + performance.now(); return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


@dataclass(frozen=True)
class UiRow:
    """One measurement."""

    view: str  # "single" or "side by side"
    tokens: int
    stream_seconds: float
    lag_ms: float


def _reply(tokens: int, marker: str, rate: float) -> Reply:
    return Reply(content=[f"w{i} " for i in range(tokens - 1)] + [marker], delay_between=1 / rate)


def run_ui_bench(sizes: list[int], rate: float = 500.0, repeats: int = 1) -> list[UiRow]:
    """Measure each size in the single view and side by side."""
    from playwright.sync_api import sync_playwright

    rows: list[UiRow] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-ui-") as tmp, FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"]) as fake:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        port = free_port()
        app = start_app(corpus, fake.url, port, Path(tmp) / "app.log", RAG_MODE="small",
                        RAG_SMALL_MAX_TOKENS="16384", RAG_LARGE_MAX_TOKENS="16384")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for view in ("single", "side by side"):
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    page.goto(f"http://127.0.0.1:{port}")
                    page.wait_for_function("() => !!document.body && document.body.innerText.includes('Answering from')", timeout=60_000)
                    if view == "side by side":
                        page.click("#chat-settings-open-modal")
                        page.click("#mode")
                        page.get_by_role("option", name="Side by side").click()
                        page.get_by_role("button", name="Confirm").click()
                        page.wait_for_selector("#mode", state="detached")
                    for tokens in sizes:
                        for attempt in range(repeats):
                            markers = [f"ENDSMALL{tokens}x{attempt}", f"ENDLARGE{tokens}x{attempt}"]
                            fake.replies = {"phi-4-mini": _reply(tokens, markers[0], rate),
                                            "gpt-oss-20b": _reply(tokens, markers[1], rate)}
                            fake.log.clear()
                            wanted = markers if view == "side by side" else markers[:1]
                            page.evaluate(_WATCH, [wanted, ".step[data-step-type=assistant_message]"])
                            started = time.monotonic()
                            page.fill("#chat-input", f"Which port does Ollama use? ({view} {tokens} {attempt})")
                            page.wait_for_selector("#chat-submit:not([disabled])", timeout=60_000)
                            page.click("#chat-submit")
                            page.wait_for_function("() => window.__seen !== null", timeout=300_000, polling=100)
                            seen_ms = float(page.evaluate("() => window.__seen"))
                            last_sent = max(entry["last_token_wall"] for entry in fake.log) * 1000
                            rows.append(UiRow(view, tokens, round(time.monotonic() - started, 1), round(seen_ms - last_sent, 1)))
                            page.wait_for_selector("#chat-submit", timeout=60_000)
                            page.wait_for_timeout(1500)  # let the turn finish (footer, chart) before the next
                    page.close()
                browser.close()
        finally:
            stop(app)
    return rows


def report_json(rows: list[UiRow]) -> str:
    """A JSON array."""
    return json.dumps([asdict(r) for r in rows])


def report_text(rows: list[UiRow]) -> str:
    """A table."""
    lines = ["view           tokens  stream s  last token -> whole answer shown"]
    lines += [f"{r.view:<14} {r.tokens:>6}  {r.stream_seconds:>8.1f}  {r.lag_ms:>8.0f} ms" for r in rows]
    return "\n".join(lines)
