"""Build the long-lived objects from Settings: done once at start-up by app.py and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from rag.analysis import Analyzer
from rag.config import Settings
from rag.corpus import Corpus
from rag.discovery import DirectoryModels, ModelDirectory
from rag.history import History
from rag.library import Library
from rag.options import AnswerOptions, answer_options, parse_limits, upload_limits
from rag.pipeline import Pipeline
from rag.retrieval import Index, Retriever
from rag.tokens import get_tokenizer


def build_library(settings: Settings) -> Library:
    """The document library over the corpus folder; not yet scanned."""
    corpus = Corpus(
        settings.corpus_dir,
        get_tokenizer(),
        settings.chunk_tokens,
        settings.chunk_overlap,
        parse_limits(settings),
        follow_external_links=settings.follow_external_links,
    )
    return Library(corpus, settings.uploads_subdir, upload_limits(settings))


def build_retriever(settings: Settings, library: Library | None = None) -> Retriever:
    """The library and its index; not yet scanned (call `warm_up()` or `await refresh()`)."""
    analyzer = Analyzer()
    index = Index(analyzer, settings.engine, settings.bm25_k1, settings.bm25_b, settings.title_weight)
    return Retriever(library or build_library(settings), index, analyzer)


@dataclass
class Services:
    """Everything long-lived the chat and the CLI share: built once, passed down."""

    settings: Settings
    retriever: Retriever
    library: Library
    directory: ModelDirectory
    pipeline: Pipeline
    options: AnswerOptions
    history: History | None = None  # the app's history database; None when history is off (and in the CLI)

    async def aclose(self) -> None:
        """Close HTTP clients and the history database."""
        await self.directory.aclose()
        if self.history is not None:
            await self.history.aclose()


def build_services(settings: Settings, own_port: int | None = None) -> Services:
    """Retriever, model directory and pipeline; `own_port` is never probed as a model server."""
    library = build_library(settings)
    retriever = build_retriever(settings, library)
    directory = ModelDirectory(settings, get_tokenizer(), own_port=own_port)
    pipeline = Pipeline(retriever, DirectoryModels(directory), retriever.analyzer, get_tokenizer())
    return Services(settings, retriever, library, directory, pipeline, answer_options(settings))
