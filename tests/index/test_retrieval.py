import asyncio
import threading
from pathlib import Path

import pytest

from rag.index.analysis import Analyzer
from rag.config import Settings
from rag.index.search import build_index, search_index
from rag.runtime import build_retriever
from rag.types import Chunk


def _chunk(source: str, text: str, title: str = "") -> Chunk:
    return Chunk(source=source, index=0, text=text, start=0, end=len(text), title=title or source)


def test_search_returns_passages_with_provenance_and_signals() -> None:
    chunks = [
        _chunk("ports.md", "Ollama serves on port 11434 and LM Studio on port 1234."),
        _chunk("models.md", "phi-4-mini is small; gpt-oss-20b is large."),
        _chunk("misc.md", "Nothing relevant here at all."),
    ]
    analyzer = Analyzer()
    snapshot = build_index(chunks, analyzer, "rank-bm25", 1.2, 0.75)
    result = search_index(snapshot, analyzer, "Which port does Ollama use on Windows?", 5)
    assert result.passages[0].chunk.source == "ports.md"
    assert result.passages[0].rank == 1
    s = result.signals
    assert result.analysed_terms == ("port", "ollama", "window")  # question words left out
    assert s.query_terms == 3
    assert set(s.matched_terms) == {"port", "ollama"}
    assert s.coverage == pytest.approx(2 / 3)
    # "window" occurs in no chunk, so it carries the largest idf: weighted coverage is lower.
    assert 0 < s.weighted_coverage < s.coverage
    assert s.top_score == result.passages[0].score
    assert s.margin == pytest.approx(s.top_score - s.second_score)
    assert len(result.passages) == 1  # other chunks share no term: zero scores are not passages


def test_no_match_gives_empty_signals() -> None:
    analyzer = Analyzer()
    snapshot = build_index([_chunk("a.md", "alpha")], analyzer, "bm25s", 1.2, 0.75)
    result = search_index(snapshot, analyzer, "zeta", 5)
    assert result.passages == () and result.signals.coverage == 0 and result.signals.top_score == 0


def test_heading_and_title_are_searchable() -> None:
    chunk = Chunk("x.md", 0, "Run the command below.", 0, 22, title="Foundry Local guide", heading="Install")
    analyzer = Analyzer()
    result = search_index(build_index([chunk], analyzer, "rank-bm25", 1.2, 0.75), analyzer, "foundry install", 3)
    assert result.signals.coverage == 1.0


async def _within(seconds: float, check) -> float:
    """Poll an async check until it holds; returns how long that took (fails after `seconds`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.05)
    return loop.time() - started


async def test_edits_to_the_folder_become_searchable_without_a_walk_per_question(
    settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.documents.watching import FolderWatcher

    (corpus_dir / "a.md").write_text("# Ports\n\nOllama uses port 11434.")
    retriever = build_retriever(settings)
    await asyncio.to_thread(retriever.warm_up)
    watcher = FolderWatcher(corpus_dir, retriever.refresh, every_s=600)
    watcher.start()
    walks = []
    real_scan = retriever.library.scan
    def counted_scan():
        walks.append(1)
        return real_scan()

    monkeypatch.setattr(retriever.library, "scan", counted_scan)
    try:
        await asyncio.wait_for(watcher.ready.wait(), 60)  # the watch is in place
        for _ in range(20):
            assert (await retriever.search("ollama port", 3)).passages[0].chunk.source == "a.md"
        assert walks == []  # questions never walk the folder

        async def top_is(source: str, text: str = "") -> bool:
            passages = (await retriever.search("studio", 3)).passages
            return bool(passages) and passages[0].chunk.source == source and text in passages[0].chunk.text

        (corpus_dir / "b.md").write_text("# Studio\n\nLM Studio uses port 1234.")
        await _within(30.0, lambda: top_is("b.md"))
        (corpus_dir / "b.md").write_text("# Studio\n\nLM Studio moved to port 4321.")
        await _within(30.0, lambda: top_is("b.md", "4321"))
        (corpus_dir / "b.md").unlink()

        async def gone() -> bool:
            return (await retriever.search("studio", 3)).passages == ()
        await _within(30.0, gone)
        assert watcher.events_working
    finally:
        await watcher.stop()
        await retriever.settled()


async def test_indexing_and_scoring_run_off_the_event_loop(
    settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.index

    (corpus_dir / "a.md").write_text("alpha beta")
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}
    retriever = build_retriever(settings)
    real_scan, real_build, real_search = retriever.library.scan, rag.index.index.build_index, rag.index.index.search_index

    def scan():
        seen["scan"] = threading.get_ident()
        return real_scan()

    def build(*args, **kwargs):
        seen["build"] = threading.get_ident()
        return real_build(*args, **kwargs)

    def search(*args, **kwargs):
        seen["search"] = threading.get_ident()
        return real_search(*args, **kwargs)

    monkeypatch.setattr(retriever.library, "scan", scan)
    monkeypatch.setattr(rag.index.index, "build_index", build)
    monkeypatch.setattr(rag.index.index, "search_index", search)
    await retriever.search("alpha", 3)
    assert set(seen) == {"scan", "build", "search"}
    assert loop_thread not in seen.values()


async def test_concurrent_queries_never_see_a_half_built_index(
    settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a rebuild with 40 new documents is under way, every query sees 1 document or all 41."""
    import rag.index.index

    (corpus_dir / "base.md").write_text("shared term in the base document")
    retriever = build_retriever(settings)
    await retriever.refresh()
    for i in range(40):
        (corpus_dir / f"n{i}.md").write_text(f"shared term in new document {i}")

    real_build = rag.index.index.build_index
    started = threading.Event()

    def slow_build(*args, **kwargs):
        started.set()
        threading.Event().wait(0.3)  # widen the window in which a torn index would be visible
        return real_build(*args, **kwargs)

    monkeypatch.setattr(rag.index.index, "build_index", slow_build)

    async def refresh_and_merge() -> None:  # the change is applied at once, the engine rebuilt after
        await retriever.refresh()
        await retriever.settled()

    rebuild = asyncio.create_task(refresh_and_merge())
    counts = []
    while not rebuild.done():
        snapshot = retriever.snapshot
        assert snapshot is not None
        counts.append(len(rag.index.index.search_index(snapshot, retriever.analyzer, "shared term", 50).passages))
        await asyncio.sleep(0.01)
    await rebuild
    assert started.is_set()
    assert set(counts) <= {1, 41} and 1 in counts
    assert len((await retriever.search("shared term", 50)).passages) == 41


def test_the_text_around_a_chunk_comes_from_its_neighbours_without_their_overlap() -> None:
    from rag.index.index import Index

    text = "alpha beta gamma delta epsilon zeta"
    chunks = (
        Chunk("d.md", 0, text[0:16], 0, 16, "D"),  # "alpha beta gamma"
        Chunk("d.md", 1, text[11:28], 11, 28, "D"),  # "gamma delta epsil" (overlaps "gamma")
        Chunk("d.md", 2, text[22:], 22, len(text), "D"),  # " epsilon zeta" (overlaps "epsil")
    )
    index = Index(Analyzer(), "rank-bm25", 1.2, 0.75)
    index.rebuild({("d.md", "h"): chunks})
    assert index.context(chunks[1]) == ("alpha beta ", "on zeta")
    assert index.context(chunks[0]) == ("", " delta epsil")
