"""Keeping the index in step with the corpus folder off the question path.

Three sources of change, none of which makes a question wait for a walk of the folder:
- filesystem events (watchfiles: inotify/FSEvents/ReadDirectoryChangesW) for edits made in the folder,
  refreshed in the background within about a second;
- the library's change stamp, one small file every process that writes to the folder rewrites (an upload
  or a deletion through the app or `rag corpus add`): a question stats that one file and, if another
  process changed the corpus, picks up the change before searching;
- a periodic full reconciliation in the background, for filesystems without events (network mounts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from rag.documents.corpus import inside_corpus

log = logging.getLogger(__name__)

def is_document_change(path: str, root: Path) -> bool:
    """A change worth a refresh: a path the corpus would serve (rag.documents.corpus.corpus_path: not hidden, not
    through a link to a folder), so the app's own temp files, lock and change log never trigger one."""
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        try:  # the watcher may report the folder's real path when `root` is a link to it
            relative = Path(path).relative_to(root.resolve())
        except (ValueError, OSError):
            return False
    return inside_corpus(root, relative.as_posix())


class FolderWatcher:
    """Calls `refresh()` after changes in `root` (debounced) and every `every_s` seconds regardless."""

    def __init__(self, root: Path, refresh: Callable[[], Awaitable[object]], every_s: float = 60.0,
                 debounce_ms: int = 300) -> None:
        self.root = root
        self.refresh = refresh
        self.every_s = every_s
        self.debounce_ms = debounce_ms
        self.events_working = False
        self.ready = asyncio.Event()  # set once folder events are being watched (or the watch failed)
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def start(self) -> None:
        """Begin watching (call from the running event loop)."""
        self._tasks = [asyncio.create_task(self._events()), asyncio.create_task(self._periodic())]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _refresh(self, why: str) -> None:
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - a failed refresh is retried at the next change or period
            log.exception("corpus refresh after %s failed", why)

    async def _events(self) -> None:
        try:
            from watchfiles import awatch
        except ImportError:  # pragma: no cover - installed with Chainlit
            log.warning("watchfiles is not installed: the corpus is reconciled every %g s only", self.every_s)
            return
        try:
            self.events_working = True
            # yield_on_timeout: an empty batch once a second with no change, so the first one tells that the
            # watch is in place (tests wait for `ready`, not a fixed time).
            async for changes in awatch(self.root, debounce=self.debounce_ms, step=50, stop_event=self._stop,
                                        recursive=True, ignore_permission_denied=True, rust_timeout=1000,
                                        yield_on_timeout=True):
                self.ready.set()
                if any(is_document_change(path, self.root) for _, path in changes):
                    await self._refresh("a change in the folder")
        except Exception as exc:  # noqa: BLE001 - e.g. inotify watch limit reached: fall back to the period
            self.events_working = False
            self.ready.set()
            log.warning("watching %s for changes failed (%s); reconciling every %g s instead", self.root, exc, self.every_s)

    async def _periodic(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.every_s)
            except TimeoutError:
                await self._refresh("the periodic reconciliation")
