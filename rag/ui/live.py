"""Live feeds: a side channel that streams an element's changing props to the page, for side by side.

Every update of a Chainlit element re-renders every message of the chat (the page hands the whole element
list to each message), so side by side's columns, updated a few times a second as an element, made each
answer slower than the one before (issue 25). While an answer streams, its columns come instead through
a feed: the element, on screen from the start of the answer, opens `GET /live/<token>` (server-sent
events) and re-renders only itself. The element's own props are updated once, when the answer ends, so a
reload or a reopened conversation shows the final columns.

The token is the capability: 128 random bits, made for one answer, gone when it ends (or after
`Feeds.TTL_S` if it never does). A feed holds only the latest props: a slow page skips to them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Feed:
    """The latest props of one element, and who is waiting for the next."""

    token: str
    props: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    closed: bool = False
    opened: float = field(default_factory=time.monotonic)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: int = -1  # the latest version written to a page
    written: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self, version: int, timeout: float) -> bool:
        """Wait until `version` (or a later one) has been written to a page, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.delivered < version and not self.closed:
            written = self.written
            try:
                await asyncio.wait_for(written.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return False
        return self.delivered >= version

    def mark_delivered(self, version: int) -> None:
        self.delivered = max(self.delivered, version)
        self.written.set()
        self.written = asyncio.Event()

    def publish(self, props: dict[str, Any]) -> None:
        self.props = props
        self.version += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()  # the next waiters wait for the next change


class Feeds:
    """This process's open feeds, by token."""

    TTL_S = 30 * 60.0  # an answer that never ended (its process task killed): its feed goes after this
    PATH = "/live/"

    def __init__(self) -> None:
        self._feeds: dict[str, Feed] = {}

    @staticmethod
    def new_token() -> str:
        """A token for a feed opened later (side by side's columns go on the page before their answer)."""
        return secrets.token_urlsafe(16)

    def open(self, token: str | None = None) -> Feed:
        self._expire()
        feed = Feed(token or self.new_token())
        self._feeds[feed.token] = feed
        return feed

    def close(self, feed: Feed) -> None:
        feed.close()
        self._feeds.pop(feed.token, None)

    def get(self, token: str) -> Feed | None:
        self._expire()
        return self._feeds.get(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token, feed in list(self._feeds.items()):
            if now - feed.opened > self.TTL_S:
                self.close(feed)

    async def events(self, token: str, heartbeat_s: float = 15.0) -> AsyncIterator[str]:
        """Server-sent events for one feed: its props now and at each change, then "end". An unknown or
        finished token gets "end" at once (the page then shows the element's own props)."""
        feed = self.get(token)
        seen = -1
        while feed is not None:
            if feed.version != seen:  # the last props published before it closed go out too
                seen = feed.version
                yield f"data: {json.dumps(feed.props)}\n\n"
                feed.mark_delivered(seen)  # resumed once the event is written
                continue
            if feed.closed or time.monotonic() - feed.opened > self.TTL_S:
                break
            changed = feed.changed
            try:
                await asyncio.wait_for(changed.wait(), heartbeat_s)
            except asyncio.TimeoutError:
                yield ": still here\n\n"  # a comment: keeps proxies from closing an idle stream
        yield "event: end\ndata: {}\n\n"


FEEDS = Feeds()
