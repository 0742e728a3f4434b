"""`rag bench load`: concurrent chat sessions through Chainlit's own websocket (Socket.IO), as browsers do.

Each session connects, picks a mode in the chat settings (auto, phi-4-mini only, gpt-oss-20b only in
turn), and asks its questions one after another; the second is a follow-up ("and what about LM Studio?").
Every question carries a session marker, so the check that no session sees another's settings, sources or
history is exact: no event a session receives may contain another session's marker, every footer must
show the session's own mode and model, and a follow-up's retrieval query must hold this session's previous
question. The app's own added latency is the time from sending to the complete answer, minus the model
time the fake server is scripted to take (twice for an escalated answer: draft plus large model).

History is on, as in `make run` (SQLite in a temporary data folder; `history=False` for the comparison):
each session signs in like a browser (the local user's header sign-in) and the app's log is searched for
"database is locked" afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.fakes.appserver import REPO, free_port, start_app, stop
from rag.fakes.openai_server import FakeOpenAIServer, Reply
from rag.metrics import percentile

QUESTIONS = (
    "Which port does Ollama use?",
    "and what about LM Studio?",
    "How does the escalation policy decide?",
    "What does time to first token mean?",
    "How do I run phi-4-mini on Foundry Local?",
)
MODES = (("auto", "auto mode", None), ("small", "small mode", "phi-4-mini"), ("large", "large mode", "gpt-oss-20b"))
_FOOTER = re.compile(r"(ms|s) total\*?$")
_MARKER = re.compile(r"\[s(\d+)q\d+\]")


@dataclass
class SessionResult:
    """What one session saw."""

    index: int
    mode: str
    latencies_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    foreign_markers: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    """Totals over all sessions; `added_*` subtract the scripted model time."""

    sessions: int
    questions_per_session: int
    answered: int
    expected: int
    isolation_violations: int
    wrong_mode_answers: int
    follow_ups_with_own_history: int
    model_time_ms: float
    total_p50_ms: float
    total_p95_ms: float
    added_p50_ms: float
    added_p95_ms: float
    first_token_p95_ms: float
    wall_seconds: float
    errors: list[str]
    history: bool = True
    database_locked: int = 0  # lines of the app's log saying "database is locked"


async def run_session(url: str, index: int, mode: str, questions: tuple[str, ...], timeout: float = 120.0) -> SessionResult:
    """One chat session over Socket.IO."""
    import socketio

    result = SessionResult(index, mode)
    client = socketio.AsyncClient(reconnection=False)
    done: asyncio.Queue[str] = asyncio.Queue()
    started_streams: asyncio.Queue[float] = asyncio.Queue()
    greeted = asyncio.Event()
    idle = asyncio.Event()  # like the browser, send only when the previous task has ended

    def inspect(data: Any) -> None:
        for found in _MARKER.findall(json.dumps(data)):
            if int(found) != index:
                result.foreign_markers.add(int(found))

    async def on_message(data: dict[str, Any]) -> None:
        inspect(data)
        output = str(data.get("output") or "")
        if data.get("type") in ("assistant_message", "system_message") and "Answering from" in output:
            greeted.set()
        elif data.get("type") == "assistant_message" and _FOOTER.search(output.strip()):
            await done.put(output)
        elif output.startswith("query: "):
            result.queries.append(" ".join(output.splitlines()[:2]))  # the query, and what a follow-up was searched with

    async def on_stream_start(data: dict[str, Any]) -> None:
        inspect(data)
        await started_streams.put(time.monotonic())

    client.on("new_message", on_message)
    client.on("update_message", on_message)
    client.on("stream_start", on_stream_start)
    client.on("element", lambda data: inspect(data))
    client.on("task_start", lambda data=None: idle.clear())
    client.on("task_end", lambda data=None: idle.set())
    session_id = str(uuid.uuid4())
    await client.connect(url, socketio_path="/ws/socket.io", transports=["websocket"], headers=await _sign_in(url), wait_timeout=timeout,
                         auth={"sessionId": session_id, "clientType": "webapp", "userEnv": "{}", "threadId": None})
    try:
        await client.emit("connection_successful")
        await asyncio.wait_for(greeted.wait(), timeout)
        if mode != "auto":
            await client.emit("chat_settings_change", {"mode": mode})
        for number, question in enumerate(questions, start=1):
            await asyncio.wait_for(idle.wait(), timeout)
            idle.clear()
            text = f"{question} [s{index}q{number}]"
            sent = time.monotonic()
            payload = {"message": {"id": str(uuid.uuid4()), "threadId": "", "name": "User", "type": "user_message",
                                   "output": text, "createdAt": datetime.now(timezone.utc).isoformat()},
                       "fileReferences": None}
            await client.emit("client_message", payload)
            try:
                footer = await asyncio.wait_for(done.get(), timeout)
                first = await asyncio.wait_for(started_streams.get(), 1)
            except TimeoutError:
                result.errors.append(f"session {index}: no answer to question {number} within {timeout:g} s")
                continue
            result.latencies_ms.append((time.monotonic() - sent) * 1000)
            result.first_token_ms.append((first - sent) * 1000)
            result.footers.append(footer.strip().splitlines()[-1])
    finally:
        await client.disconnect()
    return result


async def _sign_in(url: str) -> dict[str, str]:
    """The cookie a browser gets: the app signs in the local user without a form when history is on."""
    import httpx

    async with httpx.AsyncClient() as http:
        config = (await http.get(f"{url}/auth/config", timeout=60)).json()
        if not config.get("requireLogin"):
            return {}
        response = await http.post(f"{url}/auth/header", timeout=60)
        response.raise_for_status()
        return {"Cookie": f"access_token={response.cookies['access_token']}"}


async def run_load(url: str, sessions: int, questions: tuple[str, ...], model_ms: float) -> LoadReport:
    """All sessions at once; returns the report."""
    started = time.monotonic()
    results = await asyncio.gather(*(run_session(url, i, MODES[i % len(MODES)][0], questions) for i in range(sessions)))
    wall = time.monotonic() - started
    wrong = 0
    own_history = 0
    for r in results:
        _, label, model = next(m for m in MODES if m[0] == r.mode)
        for footer in r.footers:
            if label not in footer or (model is not None and not footer.lstrip("*").startswith(model)):
                wrong += 1
        # The follow-up (question 2) must be retrieved with this session's question 1, nobody else's.
        if len(r.queries) >= 2 and f"[s{r.index}q1]" in r.queries[1] and f"[s{r.index}q2]" in r.queries[1]:
            own_history += 1
    totals = [ms for r in results for ms in r.latencies_ms]
    firsts = [ms for r in results for ms in r.first_token_ms]
    # An escalated answer waited for two scripted model calls (the draft, then the large model).
    added = [ms - model_ms * (2 if "escalated" in footer else 1)
             for r in results for ms, footer in zip(r.latencies_ms, r.footers)]
    return LoadReport(
        sessions=sessions,
        questions_per_session=len(questions),
        answered=len(totals),
        expected=sessions * len(questions),
        isolation_violations=sum(len(r.foreign_markers) for r in results),
        wrong_mode_answers=wrong,
        follow_ups_with_own_history=own_history,
        model_time_ms=model_ms,
        total_p50_ms=round(percentile(totals, 50), 1),
        total_p95_ms=round(percentile(totals, 95), 1),
        added_p50_ms=round(percentile(added, 50), 1),
        added_p95_ms=round(percentile(added, 95), 1),
        first_token_p95_ms=round(percentile(firsts, 95), 1),
        wall_seconds=round(wall, 1),
        errors=[e for r in results for e in r.errors],
    )


def load_script(tokens: int = 20, first_s: float = 0.1, between_s: float = 0.01) -> tuple[dict[str, Reply], float]:
    """Replies for both models (grounded-looking, long enough not to escalate) and their model time in ms."""
    words = ["Ollama", "listens", "on", "port", "11434", "by", "default,", "as", "the", "guide", "explains", "in", "its",
             "first", "section", "about", "running", "models", "locally"] + ["[1]."]
    content = [w + " " for w in (words * (tokens // len(words) + 1))[:tokens]]
    content[-1] = "[1]."
    reply = Reply(content=content, delay_first=first_s, delay_between=between_s)
    return {"phi-4-mini": reply, "gpt-oss-20b": reply}, (first_s + (tokens - 1) * between_s) * 1000


def run_load_bench(sessions: int = 20, questions: int = 5, history: bool = True) -> LoadReport:
    """Start a fake server and the real app, run the sessions, stop everything."""
    replies, model_ms = load_script()
    with tempfile.TemporaryDirectory(prefix="rag-bench-load-") as tmp, FakeOpenAIServer(list(replies), replies) as fake:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "docs_corpus", corpus, ignore=shutil.ignore_patterns("uploads"))
        port = free_port()
        log = Path(tmp) / "app.log"
        app = start_app(corpus, fake.url, port, log, RAG_HISTORY=str(history).lower())
        try:
            report = asyncio.run(run_load(f"http://127.0.0.1:{port}", sessions, QUESTIONS[:questions], model_ms))
        finally:
            stop(app)
        locked = sum("database is locked" in line for line in log.read_text(errors="replace").splitlines())
        return replace(report, history=history, database_locked=locked)


def report_json(report: LoadReport) -> str:
    """One JSON object."""
    return json.dumps(asdict(report))


def report_text(r: LoadReport) -> str:
    """A short summary."""
    return (
        f"{r.sessions} sessions × {r.questions_per_session} questions: {r.answered}/{r.expected} answered in {r.wall_seconds:.1f} s\n"
        f"  isolation: {r.isolation_violations} foreign events, {r.wrong_mode_answers} answers in the wrong mode, "
        f"{r.follow_ups_with_own_history}/{r.sessions} follow-ups retrieved with their own history\n"
        f"  answer time p50 {r.total_p50_ms:.0f} ms, p95 {r.total_p95_ms:.0f} ms (model time {r.model_time_ms:.0f} ms); "
        f"app-added p50 {r.added_p50_ms:.0f} ms, p95 {r.added_p95_ms:.0f} ms; first token p95 {r.first_token_p95_ms:.0f} ms\n"
        f"  history {'on (SQLite)' if r.history else 'off'}; 'database is locked' in the log: {r.database_locked}"
        + (f"\n  errors: {'; '.join(r.errors)}" if r.errors else "")
    )
