"""A fake OpenAI-compatible server on loopback: real HTTP, real server-sent events, scripted per model.

Replies are keyed on the request's `model`, so one server plays both phi-4-mini and gpt-oss-20b. Bodies
are streamed with chunked transfer encoding like uvicorn-based servers (Foundry Local, vLLM), so cutting
the connection mid-body is a real protocol error for the client, not a clean end of stream.

Run it alone (browser tests, manual trials): `python -m rag.fakes.openai_server --port 0 --models a,b`; it
prints `READY <url>` once listening.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response."""

    content: list[str] = field(default_factory=lambda: ["Ollama listens ", "on port 11434 ", "by default [1]."])
    reasoning: list[str] = field(default_factory=list)
    reasoning_field: str = "reasoning"  # or "reasoning_content"
    usage: bool = True  # send a usage chunk when the request asks for one
    logprobs: list[float] | None = None  # one per content chunk, when the request asks for them
    status: int = 200
    error: str = ""
    delay_first: float = 0.0  # seconds before the first chunk
    delay_between: float = 0.0
    cut_after: int | None = None  # abort the connection after this many chunks
    raw_after: int | None = None  # after this many chunks, send `raw` as a data line (e.g. invalid JSON)
    raw: str = '{"choices": [{"delta": {"content": "x"}'  # a truncated JSON object
    keepalive: int = 0  # chunks with empty `choices` sent after the content, `delay_between` apart
    endless: bool = False  # repeat the content until the client hangs up (a server that never stops)
    error_after: int | None = None  # send an SSE {"error": ...} event after this many chunks
    finish_reason: str = "stop"
    end_after: int | None = None  # after this many chunks, end the body cleanly: no finish reason, no [DONE]


ReplyFor = Callable[[dict[str, Any]], Reply]


def default_reply(body: dict[str, Any]) -> Reply:
    """A grounded-looking answer that cites [1]."""
    return Reply()


class FakeOpenAIServer:
    """Start with `start()`; `url` ends in /v1; `requests` records every chat request body."""

    def __init__(
        self, models: list[str], replies: Mapping[str, Reply | ReplyFor] | None = None, port: int = 0, api_key: str | None = None
    ) -> None:
        self.models = list(models)
        self.api_key = api_key  # when set, /v1 routes answer 401 without "Authorization: Bearer <key>"
        self.replies: dict[str, Reply | ReplyFor] = dict(replies or {})
        self.requests: list[dict[str, Any]] = []
        self.model_list_status = 200
        # Per streamed reply: model and time.monotonic() of the last token sent (CLOCK_MONOTONIC is
        # system-wide on Linux, so another process on this machine can compare it with its own clock).
        self.log: list[dict[str, Any]] = []
        self.probes: list[str] = []  # GET /_probe... requests, e.g. an image URL planted in an answer
        self.loaded: list[str] | None = None  # when set, GET /openai/loadedmodels lists these (Foundry Local)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for the OpenAI SDK."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply_for(self, body: dict[str, Any]) -> Reply:
        """The scripted reply for a request."""
        scripted = self.replies.get(body.get("model", ""), default_reply)
        return scripted(body) if callable(scripted) else scripted

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
                pass

            def _refused(self) -> bool:
                if fake.api_key and self.path.startswith("/v1") and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._json(401, {"error": {"message": "invalid api key"}})
                    return True
                return False

            def do_GET(self) -> None:  # noqa: N802
                if self._refused():
                    return
                if self.path.rstrip("/") == "/_log":  # test control: what was streamed, and when
                    self._json(200, {"log": fake.log, "requests": len(fake.requests), "probes": fake.probes,
                                     "last_request": fake.requests[-1] if fake.requests else None})
                    return
                if self.path.rstrip("/") == "/openai/loadedmodels" and fake.loaded is not None:
                    listing = json.dumps(fake.loaded).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(listing)))
                    self.end_headers()
                    self.wfile.write(listing)
                    return
                if self.path.startswith("/_probe"):  # a URL a test plants in an answer: was it ever fetched?
                    fake.probes.append(self.path)
                    self._json(200, {"probed": self.path})
                    return
                if self.path.rstrip("/") != "/v1/models":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                data = [{"id": m, "object": "model", "owned_by": "fake"} for m in fake.models]
                self._json(fake.model_list_status, {"object": "list", "data": data})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self._refused():
                    return
                if self.path.rstrip("/") == "/_script":  # test control: {model: Reply fields} is the new script
                    fake.replies = {model: Reply(**fields) for model, fields in body.items()}  # {} = defaults
                    fake.log.clear()
                    fake.probes.clear()
                    self._json(200, {"scripted": sorted(body)})
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                fake.requests.append(body)
                model = body.get("model", "")
                if model not in fake.models:
                    self._json(400, {"error": {"message": f"No OpenAIService provider found for modelName {model}"}})
                    return
                reply = fake.reply_for(body)
                if reply.status != 200:
                    self._json(reply.status, {"error": {"message": reply.error or f"scripted HTTP {reply.status}"}})
                    return
                if not body.get("stream"):
                    self._complete(body, reply)
                    return
                try:
                    self._stream(body, reply)
                except (BrokenPipeError, ConnectionResetError):  # the client hung up mid-stream: its right
                    self.close_connection = True

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, payload: dict[str, Any] | str) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self._chunk(f"data: {text}\n\n".encode())

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                model = body["model"]
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
                received_wall = time.time()
                if reply.delay_first:
                    time.sleep(reply.delay_first)
                sent = 0
                pieces = [("reasoning", r) for r in reply.reasoning] + [("content", c) for c in reply.content]
                if reply.endless:
                    self._endless(base, pieces, reply)
                    return
                for index, (kind, text) in enumerate(pieces):
                    if reply.raw_after is not None and sent == reply.raw_after:
                        self._event(reply.raw)
                    if reply.cut_after is not None and sent >= reply.cut_after:
                        self._abort()
                        return
                    if reply.end_after is not None and sent >= reply.end_after:
                        self._chunk(b"")  # a well-formed end of the body: only the finish is missing
                        return
                    if reply.error_after is not None and sent >= reply.error_after:
                        self._event({"error": {"message": reply.error or "scripted stream error"}})
                        self._event("[DONE]")
                        self._chunk(b"")
                        return
                    if index and reply.delay_between:
                        time.sleep(reply.delay_between)
                    delta = {reply.reasoning_field: text} if kind == "reasoning" else {"content": text}
                    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
                    content_index = index - len(reply.reasoning)
                    if kind == "content" and body.get("logprobs") and reply.logprobs and content_index < len(reply.logprobs):
                        choice["logprobs"] = {
                            "content": [{"token": text, "logprob": reply.logprobs[content_index], "bytes": None, "top_logprobs": []}]
                        }
                    self._event({**base, "choices": [choice]})
                    sent += 1
                if reply.cut_after is not None and sent >= reply.cut_after:
                    self._abort()
                    return
                if reply.end_after is not None and sent >= reply.end_after:
                    self._chunk(b"")
                    return
                for _ in range(reply.keepalive):  # "progress" that carries no text
                    time.sleep(reply.delay_between)
                    self._event({**base, "choices": []})
                fake.log.append({"model": model, "last_token": time.monotonic(), "last_token_wall": time.time(), "chunks": sent,
                                 "received_wall": received_wall})
                self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]})
                if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
                    self._event({**base, "choices": [], "usage": _usage(body, reply)})
                self._event("[DONE]")
                self._chunk(b"")

            def _complete(self, body: dict[str, Any], reply: Reply) -> None:
                """A non-streamed chat completion: the whole reply at once, after the scripted time."""
                time.sleep(reply.delay_first + reply.delay_between * max(len(reply.content) - 1, 0))
                text = "".join(reply.content)
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if reply.reasoning:
                    message[reply.reasoning_field] = "".join(reply.reasoning)
                self._json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                                 "model": body["model"], "choices": [{"index": 0, "message": message,
                                                                      "finish_reason": reply.finish_reason}],
                                 "usage": _usage(body, reply)})

            def _endless(self, base: dict[str, Any], pieces: list[tuple[str, str]], reply: Reply) -> None:
                try:
                    while True:
                        for kind, text in pieces:
                            delta = {reply.reasoning_field: text} if kind == "reasoning" else {"content": text}
                            self._event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                            if reply.delay_between:
                                time.sleep(reply.delay_between)
                except OSError:  # the client hung up: what a server that never stops meets in the end
                    self.close_connection = True

            def _abort(self) -> None:
                # Close mid-body, as when a server process dies: the chunked body never completes, so
                # the client gets a protocol error. FIN rather than RST, because an RST can make the
                # client's kernel drop chunks it received but had not read yet (a racy test).
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        return Handler


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    """Token counts as a server reports them: words stand in for tokens; reasoning counts as completion."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = sum(len(t.split()) for t in reply.content + reply.reasoning)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def main() -> None:
    """Serve until killed; every model answers with the default reply, paced like a small model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--models", default="phi-4-mini,gpt-oss-20b")
    parser.add_argument("--delay-between", type=float, default=0.0, help="Seconds between chunks.")
    parser.add_argument("--delay-first", type=float, default=0.0, help="Seconds before the first chunk.")
    parser.add_argument("--reply", action="append", default=[], metavar="MODEL=TEXT",
                        help="What MODEL answers (words become chunks); repeatable.")
    parser.add_argument("--reasoning", action="append", default=[], metavar="MODEL=TEXT",
                        help="Reasoning MODEL streams in delta.reasoning before answering; repeatable.")
    args = parser.parse_args()
    server = FakeOpenAIServer(args.models.split(","), port=args.port)
    texts = dict(item.split("=", 1) for item in args.reply)
    thoughts = dict(item.split("=", 1) for item in args.reasoning)
    for model in server.models:
        reply = Reply(delay_between=args.delay_between, delay_first=args.delay_first)
        if model in texts:
            reply.content = [w + " " for w in texts[model].split(" ")]
        if model in thoughts:
            reply.reasoning = [w + " " for w in thoughts[model].split(" ")]
        server.replies[model] = reply
    server.start()
    sys.stdout.write(f"READY {server.url}\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
