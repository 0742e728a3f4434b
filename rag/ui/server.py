"""Adjustments to Chainlit's server for this process, made once at start-up (each works around a default
of Chainlit's that is wrong for this app; the docstrings say which)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from collections.abc import MutableMapping
from typing import Any

from rag.chat.paste import SOCKET_BUFFER_BYTES


def own_files_folder() -> None:
    """A folder of this process's own for Chainlit's per-session files (uploads in flight, elements).

    Chainlit keeps them under `<app folder>/.files` and deletes that whole folder when its server stops,
    so of two app processes started from one folder (several workers behind a proxy), stopping one broke
    the other's next answer ("No such file or directory: .files/<session>"). Each process now owns a
    private temporary folder, removed when it stops.
    """
    import chainlit.config
    import chainlit.server

    own = Path(tempfile.mkdtemp(prefix="rag-chainlit-files-"))
    chainlit.config.FILES_DIRECTORY = own  # read by each session when it stores a file
    chainlit.server.FILES_DIRECTORY = own  # removed by the server at shutdown


def same_origin_websocket() -> None:
    """Accept websocket connections only from pages of the app's own origin.

    Chainlit creates its Socket.IO server with CORS handling switched off (`cors_allowed_origins=[]`),
    so any web page the user visits could open a chat session in their name. `None` is engine.io's
    same-origin check (Origin must match the Host, or X-Forwarded-Host behind a proxy).
    """
    from chainlit.server import sio

    sio.eio.cors_allowed_origins = None
    # Room for the longest message the chat takes (a longer one gets an answer saying so, not a dropped
    # connection: Socket.IO closes it, silently, on a frame over its buffer).
    sio.eio.max_http_buffer_size = max(sio.eio.max_http_buffer_size, SOCKET_BUFFER_BYTES)


# Links to other hosts in Chainlit's page: Google's font stylesheet (and connections opened to it ahead of
# time), KaTeX's stylesheet on a CDN (this app renders no LaTeX), and social-preview tags naming
# Chainlit's site and banner. Matched as whole tags, across lines.
_REMOTE_TAG = re.compile(r"<(?:link|meta)\b[^>]*?(?:href|content)=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE | re.DOTALL)


def without_remote_assets(html: str) -> str:
    """Chainlit's page without anything it would fetch from (or connect to) another host."""
    return _REMOTE_TAG.sub("", html)


def local_page_only() -> None:
    """The page loads nothing from the internet, as the README promises (issue 26).

    Chainlit's index.html asks fonts.googleapis.com for the Inter font and cdn.jsdelivr.net for KaTeX's
    stylesheet on every load; offline that is a request that hangs or fails, and online it tells two
    third parties that someone opened the app. The page falls back to the system's sans-serif font.
    """
    import chainlit.server

    original = chainlit.server.get_html_template
    if getattr(original, "local_only", False):
        return

    def template(root_path: str) -> str:
        return without_remote_assets(original(root_path))

    template.local_only = True  # type: ignore[attr-defined]
    chainlit.server.get_html_template = template


def others_conversations_are_not_found() -> None:
    """A link to another user's conversation says "Thread not found" and opens a new chat, as a link to
    one that does not exist does (issue 26).

    Chainlit refuses the whole websocket connection when the conversation in the link is someone else's:
    the page said "Could not reach the server", sending stayed disabled and the settings hidden until
    New chat. The connection is now accepted without resuming it (the conversation is still never
    shown), and the same answer is given for someone else's and for a made-up id, so a link reveals
    nothing about whether it exists.
    """
    import uuid

    from chainlit.server import sio
    from socketio.exceptions import ConnectionRefusedError as Refused  # type: ignore[import-untyped]

    handlers = sio.handlers.setdefault("/", {})
    original = handlers.get("connect")
    if original is None or getattr(original, "strangers_not_found", False):
        return

    async def connect(sid: str, environ: dict[str, object], auth: dict[str, object] | None = None) -> object:
        try:
            return await original(sid, environ, auth)
        except (Refused, ConnectionRefusedError):  # Chainlit raises the built-in one
            if not auth or not auth.get("threadId"):
                raise  # not signed in, or a session that is not this user's: refused as before
            # An id no conversation has: resuming finds nothing, says so, and the chat starts afresh.
            return await original(sid, environ, {**auth, "threadId": str(uuid.uuid4())})

    connect.strangers_not_found = True  # type: ignore[attr-defined]
    handlers["connect"] = connect


def quiet_stop() -> None:
    """Stop without Chainlit's "Task manually stopped." message (issue 26).

    The stopped answer already says "(stopped)" where it stands; Chainlit's extra message came after it
    and, being the turn's last message, took the answer's Copy and rating buttons.
    """
    from chainlit.config import config
    from chainlit.context import init_ws_context
    from chainlit.server import sio
    from chainlit.session import WebsocketSession

    async def stop(sid: str) -> None:
        if session := WebsocketSession.get(sid):
            init_ws_context(session)
            if session.current_task:
                session.current_task.cancel()
            if config.code.on_stop:
                await config.code.on_stop()

    sio.handlers.setdefault("/", {})["stop"] = stop


# Chainlit answers a wrong password with the bare code "credentialssignin", which its page shows as
# "Unauthorized: credentialssignin" (the form itself shows the translated message).
_SIGN_IN_CODE = b'"credentialssignin"'
_SIGN_IN_WORDS = b'"wrong name or password"'


def readable_sign_in_errors() -> None:
    """The sign-in endpoint's refusal in words (issue 26), rewritten on its way out of the app (around
    the whole app: Chainlit raises it as an HTTP error, turned into a response outside the route)."""
    from chainlit.server import app

    inner = app.middleware_stack or app.build_middleware_stack()
    if getattr(inner, "readable", False):
        return

    async def readable(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or not str(scope.get("path", "")).endswith("/login"):
            await inner(scope, receive, send)
            return
        start: MutableMapping[str, Any] | None = None

        async def forward(message: MutableMapping[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # held until the body is known: its length may change
                return
            if message["type"] == "http.response.body" and start is not None:
                body = message.get("body", b"")
                if start["status"] == 401 and _SIGN_IN_CODE in body and not message.get("more_body"):
                    body = body.replace(_SIGN_IN_CODE, _SIGN_IN_WORDS)
                    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                    start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
                    message = {**message, "body": body}
                await send(start)
                start = None
            await send(message)

        await inner(scope, receive, forward)

    readable.readable = True  # type: ignore[attr-defined]
    app.middleware_stack = readable


def live_feeds() -> None:
    """`GET /live/<token>`: an answer's side-by-side columns as server-sent events (rag.ui.live). Put
    before Chainlit's catch-all route, which would otherwise answer it with the page."""
    from chainlit.server import app
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from rag.ui.live import FEEDS

    if any(getattr(r, "path", None) == FEEDS.PATH + "{token}" for r in app.router.routes):
        return

    async def live(request: Request) -> StreamingResponse:
        return StreamingResponse(FEEDS.events(str(request.path_params["token"])), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app.router.routes.insert(0, Route(FEEDS.PATH + "{token}", live, methods=["GET"]))


def corpus_files(corpus: Path) -> None:
    """`GET /corpus-file/<path>`: a PDF of the corpus, for the cited pages of a reopened conversation
    (rag.documents.links). Signed-in users only, as every page of the app; only PDFs inside the corpus."""
    from chainlit.auth import get_current_user
    from chainlit.server import app
    from fastapi import Depends, HTTPException
    from fastapi.responses import FileResponse
    from fastapi.routing import APIRoute

    from rag.documents.links import PREFIX, corpus_pdf

    if any(getattr(r, "path", None) == PREFIX + "{path:path}" for r in app.router.routes):
        return

    async def serve(path: str, user: Any = Depends(get_current_user)) -> FileResponse:
        file = corpus_pdf(corpus, path)
        if file is None:
            raise HTTPException(status_code=404, detail="No such PDF in the documents")
        return FileResponse(file, media_type="application/pdf", headers={"Cache-Control": "private, max-age=300"})

    app.router.routes.insert(0, APIRoute(PREFIX + "{path:path}", serve, methods=["GET"]))
