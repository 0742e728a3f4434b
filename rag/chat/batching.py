"""Batch streamed text into periodic flushes.

Chainlit renders one websocket event per token very slowly (1,000 tokens took 12 s to render), while
flushes every ~40 ms render 2,000 tokens in 0.5 s (FACTS.md). The batcher flushes on a timer, so text
never waits longer than one interval however irregularly tokens arrive.

The browser re-renders the whole message (Markdown) on every flush, so the work per flush grows with the
answer: for long answers a fixed interval makes the page fall behind the stream. The interval therefore
grows with the text already flushed (`per_char`), keeping the number of re-renders roughly proportional
to the square root of the work; `rag bench ui` measures the effect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class TokenBatcher:
    """Collects text with `add()`; a background task hands it to `flush` every `interval` seconds."""

    def __init__(self, flush: Callable[[str], Awaitable[None]], interval: float = 0.04, per_char: float = 0.0) -> None:
        self._flush = flush
        self._interval = interval
        self._per_char = per_char
        self._flushed_chars = 0
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.flushes = 0

    def add(self, text: str) -> None:
        """Queue text; starts the timer on first use."""
        if not text:
            return
        self._pending.append(text)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def drain(self) -> None:
        """Flush whatever is pending now."""
        async with self._lock:
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                self.flushes += 1
                self._flushed_chars += len(text)
                await self._flush(text)

    async def close(self) -> None:
        """Stop the timer and flush the rest."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.drain()

    def discard(self) -> None:
        """Drop pending text (the stream it belonged to is being replaced)."""
        self._pending.clear()

    @property
    def current_interval(self) -> float:
        """Seconds until the next flush: the base interval plus `per_char` for every character flushed."""
        return self._interval + self._per_char * self._flushed_chars

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.current_interval)
            await self.drain()
