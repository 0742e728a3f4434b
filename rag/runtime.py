"""Build the long-lived objects from Settings: done once at start-up by app.py and the CLI."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.analysis import Analyzer
from rag.config import Settings
from rag.corpus import Corpus
from rag.library import Library
from rag.options import AnswerOptions, answer_options, parse_limits, upload_limits
from rag.retrieval import Index, Retriever
from rag.store import DocumentStore, fingerprint
from rag.support import SupportModel
from rag.tokens import LazyTokenizer, get_tokenizer, tokenizer_name

if TYPE_CHECKING:  # the models, the history and the watcher are the app's: `rag search` never imports them
    from rag.discovery import ModelDirectory
    from rag.history import History
    from rag.pipeline import Pipeline
    from rag.watching import FolderWatcher


def build_library(settings: Settings) -> Library:
    """The document library over the corpus folder; not yet scanned."""
    corpus = Corpus(
        settings.corpus_dir,
        LazyTokenizer(),
        settings.chunk_tokens,
        settings.chunk_overlap,
        parse_limits(settings),
        follow_external_links=settings.follow_external_links,
    )
    return Library(corpus, settings.uploads_subdir, upload_limits(settings))


def build_retriever(settings: Settings, library: Library | None = None) -> Retriever:
    """The library and its index; not yet scanned (call `warm_up()`, from a thread in the app)."""
    analyzer = Analyzer()
    model = SupportModel.load(settings.support_model) if settings.support_model else None
    index = Index(analyzer, settings.engine, settings.bm25_k1, settings.bm25_b, settings.title_weight, model)
    return Retriever(library or build_library(settings), index, analyzer, document_store(settings))


# The code that shapes stored chunks and terms: any change to it makes a new store (the old one is ignored).
_SHAPING_CODE = ("analysis.py", "chunking.py", "parsing.py", "corpus.py", "store.py", "types.py")


def document_store(settings: Settings) -> DocumentStore:
    """The store of parsed and analysed documents for these settings, in the data folder."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in _SHAPING_CODE)).hexdigest()
    key = fingerprint(corpus=str(settings.corpus_dir.resolve()), chunk_tokens=settings.chunk_tokens,
                      overlap=settings.chunk_overlap, tokenizer=tokenizer_name(), limits=parse_limits(settings),
                      links=settings.follow_external_links, code=code)
    return DocumentStore(settings.data_dir / "index", key)


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
    watcher: FolderWatcher | None = None  # the app's watch on the corpus folder

    async def aclose(self) -> None:
        """Stop watching, close HTTP clients and the history database."""
        if self.watcher is not None:
            await self.watcher.stop()
        await self.directory.aclose()
        if self.history is not None:
            await self.history.aclose()


def build_services(settings: Settings, own_port: int | None = None) -> Services:
    """Retriever, model directory and pipeline; `own_port` is never probed as a model server."""
    from rag.discovery import DirectoryModels, ModelDirectory
    from rag.pipeline import Pipeline

    library = build_library(settings)
    retriever = build_retriever(settings, library)
    directory = ModelDirectory(settings, get_tokenizer(), own_port=own_port)
    pipeline = Pipeline(retriever, DirectoryModels(directory), retriever.analyzer, get_tokenizer())
    return Services(settings, retriever, library, directory, pipeline, answer_options(settings))
