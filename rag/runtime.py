"""Build the long-lived objects from Settings: done once at start-up by app.py and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from rag.analysis import Analyzer
from rag.config import Settings
from rag.corpus import Corpus
from rag.parsing import MB, ParseLimits
from rag.discovery import ModelDirectory
from rag.pipeline import AnswerOptions, DirectoryModels, Pipeline
from rag.retrieval import Retriever
from rag.tokens import get_tokenizer
from rag.uploads import UploadLimits


def parse_limits(settings: Settings) -> ParseLimits:
    """The parser limits the settings ask for."""
    return ParseLimits(
        max_bytes=int(settings.max_file_mb * MB),
        max_uncompressed_bytes=int(settings.max_uncompressed_mb * MB),
        max_pages=settings.max_pages,
    )


def upload_limits(settings: Settings) -> UploadLimits:
    """The upload limits the settings ask for."""
    return UploadLimits(
        max_file_bytes=int(settings.max_file_mb * MB),
        max_files=settings.max_upload_files,
        max_corpus_bytes=int(settings.max_corpus_mb * MB),
    )


def build_retriever(settings: Settings) -> Retriever:
    """The corpus and its retriever; not yet scanned (call `warm_up()` or `await refresh()`)."""
    corpus = Corpus(
        settings.corpus_dir,
        get_tokenizer(),
        settings.chunk_tokens,
        settings.chunk_overlap,
        parse_limits(settings),
    )
    return Retriever(corpus, Analyzer(), settings.engine, settings.bm25_k1, settings.bm25_b)


@dataclass
class Services:
    """Everything long-lived the chat and the CLI share: built once, passed down."""

    settings: Settings
    retriever: Retriever
    directory: ModelDirectory
    pipeline: Pipeline
    options: AnswerOptions

    async def aclose(self) -> None:
        """Close HTTP clients."""
        await self.directory.aclose()


def build_services(settings: Settings, own_port: int | None = None) -> Services:
    """Retriever, model directory and pipeline; `own_port` is never probed as a model server."""
    retriever = build_retriever(settings)
    directory = ModelDirectory(settings, get_tokenizer(), own_port=own_port)
    pipeline = Pipeline(retriever, DirectoryModels(directory), retriever.analyzer, get_tokenizer())
    return Services(settings, retriever, directory, pipeline, AnswerOptions.from_settings(settings))
