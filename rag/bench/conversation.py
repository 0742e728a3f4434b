"""`rag bench ui --conversation N`: does the chat stay as fast at the Nth answer as at the first, and how
far is it from bare Chainlit?

The app and a bare Chainlit reference (one `on_message` that streams the same server's tokens into one
`cl.Message`, flushed the way Chainlit's own examples do: no retrieval, no steps, no elements) run side by
side against one fake model server. For each answer, a requestAnimationFrame loop in Chromium stamps when
the answer's first token is on screen and when its last one is, both from the moment Enter was pressed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

from rag.bench.ui import CHROMIUM, CHROMIUM_ARGS
from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply

# The reference: what any Chainlit app that streams a model's answer does, and nothing else.
BARE_APP = '''
import os
import chainlit as cl
from openai import AsyncOpenAI

client = AsyncOpenAI(base_url=os.environ["BARE_MODEL_URL"], api_key="not-needed")
MODEL = os.environ.get("BARE_MODEL", "phi-4-mini")


@cl.on_message
async def answer(message: cl.Message) -> None:
    reply = cl.Message(content="")
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": message.content}], stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            await reply.stream_token(chunk.choices[0].delta.content)
    await reply.send()
'''

_WATCH = """
([first, last]) => {
  // The messages already on screen when the question is sent (by element, not by count: the app replaces
  // its latency chart after each answer, so counting would look at the wrong message).
  const messages = () => [...document.querySelectorAll('.step[data-step-type=assistant_message]')];
  const old = new Set(messages());
  // From the moment Enter is pressed: the key event's own time stamp, taken when the browser received it,
  // so a page busy with earlier work counts against it, as it would against a person typing.
  window.__sent = null; window.__first = null; window.__done = null;
  document.addEventListener('keydown', e => { if (e.key === 'Enter') window.__sent = e.timeStamp; },
                            {capture: true, once: true});
  const tick = () => {
    const fresh = messages().filter(e => !old.has(e)).map(e => e.textContent).join(' ');
    if (window.__first === null && fresh.includes(first)) window.__first = performance.now();
    if (fresh.includes(last)) { window.__done = performance.now(); return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


@dataclass(frozen=True)
class AnswerTiming:
    """One answer: which app, its number in the conversation, first text and complete (ms after sending)."""

    app: str
    number: int
    first_ms: float
    complete_ms: float


def start_bare(folder: Path, source: str, port: int, log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """A bare Chainlit app (`source`, written to `folder`) on `port`, in a process group of its own."""
    (folder / "app.py").write_text(source)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "chainlit"), "run", "app.py", "--headless", "--host", "127.0.0.1",
         "--port", str(port)], cwd=folder, env={**os.environ, "CHAINLIT_APP_ROOT": str(folder), **env},
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return process


def stop_bare(process: subprocess.Popen[bytes]) -> None:
    """Stop a bare app started by `start_bare`, with whatever it started."""
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def wait_http(url: str, seconds: float = 90.0) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s")


def _choose_mode(page: Any, label: str) -> None:
    page.click("#chat-settings-open-modal")
    page.wait_for_selector("#mode", timeout=10_000)
    page.click("#mode")
    page.get_by_role("option", name=label).click()
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#mode", state="detached", timeout=10_000)


def run_conversation_bench(answers: int = 30, tokens: int = 100, ttft_s: float = 0.2, per_token_s: float = 0.005,
                           mode: str = "small") -> list[AnswerTiming]:
    """`answers` questions in one conversation, in the app (in `mode`) and in bare Chainlit.

    In auto mode the small model's draft is one token, too short to keep: every answer escalates, and
    is complete when the large model's last token is on screen (bare Chainlit streams that same reply).
    """
    from playwright.sync_api import sync_playwright

    reply = Reply(content=["FIRSTTOKEN "] + [f"w{i} " for i in range(tokens - 2)] + ["LASTTOKEN."],
                  delay_first=ttft_s, delay_between=per_token_s)
    replies = {"phi-4-mini": reply, "gpt-oss-20b": reply}
    if mode == "auto":
        replies["phi-4-mini"] = Reply(content=["FIRSTTOKEN"], delay_first=ttft_s)
    rows: list[AnswerTiming] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-conv-") as tmp, \
            FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"], replies) as fake:
        root = Path(tmp)
        corpus = root / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        (root / "bare").mkdir()
        app_port, bare_port = free_port(), free_port()
        # Every answer the same path: a draft in auto mode, however well the corpus supports the question.
        app = start_app(corpus, fake.url, app_port, root / "app.log", RAG_MODE="small" if mode == "compare" else mode,
                        RAG_MIN_DRAFT_SUPPORT="0", RAG_SKIP_DRAFT_SUPPORT="0")
        bare = start_bare(root / "bare", BARE_APP, bare_port, root / "bare.log", BARE_MODEL_URL=fake.url,
                          BARE_MODEL="gpt-oss-20b" if mode == "auto" else "phi-4-mini")
        try:
            wait_http(f"http://127.0.0.1:{bare_port}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name, url in (("bare Chainlit", f"http://127.0.0.1:{bare_port}"),
                                  (f"this app ({mode})", f"http://127.0.0.1:{app_port}")):
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    page.goto(url)
                    page.wait_for_selector("#chat-input", timeout=60_000)
                    if name != "bare Chainlit":  # the app greets once its services are up
                        page.wait_for_function("() => document.body.innerText.includes('Answering from')", timeout=60_000)
                        if mode == "compare":  # side by side is a chat setting, chosen as a user does
                            _choose_mode(page, "Side by side")
                    for number in range(1, answers + 1):
                        page.wait_for_selector("#chat-submit", timeout=60_000)
                        page.fill("#chat-input", f"Which port does Ollama use? (question {number})")
                        page.wait_for_selector("#chat-submit:not([disabled])", timeout=60_000)
                        page.evaluate(_WATCH, ["FIRSTTOKEN", "LASTTOKEN."])
                        page.keyboard.press("Enter")  # as a person sends (a click would time Playwright's own checks)
                        try:
                            page.wait_for_function("() => window.__done !== null && window.__sent !== null",
                                                   timeout=120_000, polling=50)
                        except Exception as exc:
                            shown = page.evaluate("() => [...document.querySelectorAll('.step')].slice(-3).map(e => e.textContent.slice(0, 120))")
                            raise RuntimeError(f"{name}: answer {number} never completed on screen; last messages: {shown}") from exc
                        first, done, sent = page.evaluate("() => [window.__first, window.__done, window.__sent]")
                        rows.append(AnswerTiming(name, number, round(first - sent, 1), round(done - sent, 1)))
                        # The turn ends (footer, chart) before the next question, as a person reads it.
                        page.wait_for_selector("#chat-submit:not([disabled]), #chat-submit", timeout=60_000)
                        page.wait_for_function("() => !document.querySelector('#stop-button')", timeout=60_000)
                    page.close()
                browser.close()
        finally:
            stop(app)
            stop_bare(bare)
    return rows


def summary(rows: list[AnswerTiming]) -> list[dict[str, object]]:
    """Per app: the first answer, median first text and complete for answers 1-5 and the last five, and
    their ratios."""
    out = []
    for app in dict.fromkeys(r.app for r in rows):
        mine = [r for r in rows if r.app == app]
        head, tail = mine[:5], mine[-5:]
        entry = {"app": app, "answers": len(mine), "first_answer_first_ms": mine[0].first_ms,
                 "first_answer_complete_ms": mine[0].complete_ms,
                 "first_1_5_ms": median(r.first_ms for r in head), "complete_1_5_ms": median(r.complete_ms for r in head),
                 "first_last5_ms": median(r.first_ms for r in tail), "complete_last5_ms": median(r.complete_ms for r in tail)}
        entry["first_growth"] = round(float(entry["first_last5_ms"]) / max(float(entry["first_1_5_ms"]), 1e-9), 2)  # type: ignore[arg-type]
        entry["complete_growth"] = round(float(entry["complete_last5_ms"]) / max(float(entry["complete_1_5_ms"]), 1e-9), 2)  # type: ignore[arg-type]
        out.append(entry)
    return out


def report_text(rows: list[AnswerTiming]) -> str:
    lines = ["| | answer 1 first / complete | answers 1-5 first / complete (median) | last 5 first / complete (median) | growth |",
             "|---|---:|---:|---:|---:|"]
    for s in summary(rows):
        lines.append(f"| {s['app']} | {s['first_answer_first_ms']:.0f} / {s['first_answer_complete_ms']:.0f} ms | "
                     f"{s['first_1_5_ms']:.0f} / {s['complete_1_5_ms']:.0f} ms | "
                     f"{s['first_last5_ms']:.0f} / {s['complete_last5_ms']:.0f} ms | "
                     f"x{s['first_growth']} / x{s['complete_growth']} |")
    return "\n".join(lines)


def chart_svg(rows: list[AnswerTiming]) -> str:
    """First text and complete against the answer number, one line per app and measure."""
    width, height, pad = 720, 360, 40
    most = max((r.complete_ms for r in rows), default=1.0) * 1.1
    count = max((r.number for r in rows), default=1)
    colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<text x="{pad}" y="16">ms after sending, by answer number (solid: complete, dashed: first text)</text>']
    for i, app in enumerate(dict.fromkeys(r.app for r in rows)):
        mine = [r for r in rows if r.app == app]
        for field, dash in (("complete_ms", ""), ("first_ms", ' stroke-dasharray="4 3"')):
            points = " ".join(f"{pad + (r.number - 1) * (width - 2 * pad) / max(count - 1, 1):.1f},"
                              f"{height - pad - getattr(r, field) * (height - 2 * pad) / most:.1f}" for r in mine)
            parts.append(f'<polyline fill="none" stroke="{colours[i % 4]}" stroke-width="1.5"{dash} points="{points}"/>')
        parts.append(f'<text x="{width - 200}" y="{30 + 14 * i}" fill="{colours[i % 4]}">{app}</text>')
    parts.append(f'<text x="{pad}" y="{height - 10}">answer 1 .. {count}; top = {most:.0f} ms</text></svg>')
    return "\n".join(parts)


def report_json(rows: list[AnswerTiming]) -> str:
    return json.dumps({"answers": [asdict(r) for r in rows], "summary": summary(rows)})
