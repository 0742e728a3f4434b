"""Build the long-lived objects from Settings: done once at start-up by app.py and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.index.analysis import Analyzer
from rag.config import Settings
from rag.documents.corpus import Corpus
from rag.documents.library import Library
from rag.answer.options import AnswerOptions, answer_options, parse_limits, upload_limits
from rag.index.index import Index, SearchIndex
from rag.index.retriever import Retriever
from rag.index.persistence import DocumentStore, fingerprint
from rag.index.support import SupportModel
from rag.llm.tokens import LazyTokenizer, get_tokenizer, tokenizer_name
from rag.errors import RagError

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the models, the history and the watcher are the app's: `rag search` never imports them
    from rag.index.opensearch import OpenSearchOptions
    from rag.policy.corpus_calibration import CalibrationStore, CorpusCalibration
    from rag.llm.discovery import ModelDirectory
    from rag.chat.history import History
    from rag.answer.pipeline import Pipeline
    from rag.documents.watching import FolderWatcher


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
    """The library and its index; not yet scanned (call `warm_up()`, from a thread in the app).

    With RAG_ENGINE=opensearch the index lives in the cluster; nothing connects until the first sync."""
    analyzer = Analyzer()
    model = SupportModel.load(settings.support_model) if settings.support_model else None
    index: SearchIndex
    if settings.engine == "opensearch":
        from rag.index.opensearch import OpenSearchIndex

        index = OpenSearchIndex(analyzer, opensearch_options(settings), model, progress=_log_progress())
    else:
        index = Index(analyzer, settings.engine, settings.bm25_k1, settings.bm25_b, settings.title_weight, model)
    return Retriever(library or build_library(settings), index, analyzer, document_store(settings))


def _log_progress() -> Callable[[int, int], None]:
    """A first sync of a large corpus takes minutes: say how far it is, every tenth of the way."""
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if total >= 1000 and tenth != shown[0]:
            shown[0] = tenth
            log.info("indexing into OpenSearch: %d of %d documents", done, total)

    return progress


def opensearch_options(settings: Settings) -> OpenSearchOptions:
    """How to reach the cluster and shape the index, from the settings (secrets revealed only here)."""
    from rag.index.opensearch import OpenSearchOptions

    password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else None
    return OpenSearchOptions(
        urls=tuple(settings.opensearch_url.split(",")), index=settings.opensearch_index, user=settings.opensearch_user,
        password=password, ca_certs=settings.opensearch_ca_certs, verify_certs=settings.opensearch_verify_certs,
        shards=settings.opensearch_shards, replicas=settings.opensearch_replicas, timeout_s=settings.opensearch_timeout_s,
        k1=settings.bm25_k1, b=settings.bm25_b, title_weight=settings.title_weight)


# The code that shapes stored chunks and terms: any change to it makes a new store (the old one is ignored).
_SHAPING_CODE = ("index/analysis.py", "documents/chunking.py", "documents/parsing.py", "documents/corpus.py",
                 "index/persistence.py", "types.py")


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
    calibrating: asyncio.Task[None] | None = None  # the app's support calibration in the background

    async def aclose(self) -> None:
        """Stop watching and calibrating, close HTTP clients and the history database."""
        if self.calibrating is not None:
            self.calibrating.cancel()
        if self.watcher is not None:
            await self.watcher.stop()
        await self.directory.aclose()
        if self.history is not None:
            await self.history.aclose()


def build_services(settings: Settings, own_port: int | None = None) -> Services:
    """Retriever, model directory and pipeline; `own_port` is never probed as a model server."""
    from rag.llm.discovery import DirectoryModels, ModelDirectory
    from rag.answer.pipeline import Pipeline

    library = build_library(settings)
    retriever = build_retriever(settings, library)
    directory = ModelDirectory(settings, get_tokenizer(), own_port=own_port)
    pipeline = Pipeline(retriever, DirectoryModels(directory), retriever.analyzer, get_tokenizer())
    return Services(settings, retriever, library, directory, pipeline, answer_options(settings))


async def preload(services: Services) -> None:
    """Load now what the first question would load lazily, so that it costs no more than the next ones
    (issue 25: it took ~150 ms more): the tokenizer's encoding, the search path (the engines, the support
    model, language detection), the model servers' discovery and the clients with their SDK modules and
    TLS set-up. Sends no model request; a search server or model server that is down is reported by the
    greeting, not here."""
    from rag.llm.discovery import DirectoryModels

    def local() -> None:
        get_tokenizer().count("Warm up the tokenizer.")

    await asyncio.to_thread(local)
    with contextlib.suppress(RagError):  # search down: the greeting says so, and the first question retries
        await services.retriever.search("warm up the search path", services.options.top_k)
    models = DirectoryModels(services.directory)
    for kind in ("small", "large"):
        model = await models.get(kind)
        warm = getattr(model, "warm", None)
        if callable(warm):
            warm()


# --- support calibrated on this corpus (rag.policy.corpus_calibration) ----------------------------------


def calibration_store(settings: Settings) -> CalibrationStore:
    """Where the corpus calibration is kept: beside the index store, for these settings and this corpus."""
    from rag.policy.corpus_calibration import CalibrationStore

    return CalibrationStore(document_store(settings).path.parent / f"support-{document_store(settings).key}.json")


def calibrate_now(settings: Settings, retriever: Retriever) -> CorpusCalibration | None:
    """Calibrate support on the retriever's corpus and install the model (None: too small, prior kept).
    CPU-bound: call it from a thread."""
    from rag.policy.corpus_calibration import calibrate_corpus

    thresholds = {"off_topic_support": settings.off_topic_support, "skip_draft_support": settings.skip_draft_support,
                  "min_support": settings.min_support}
    calibration = calibrate_corpus(retriever.library.document_chunks(), retriever.analyzer, settings.bm25_k1,
                                   settings.bm25_b, settings.title_weight, thresholds, retriever.index.terms_cache)
    if calibration is not None:
        retriever.index.support_model = calibration.model
    return calibration


def chunk_count(retriever: Retriever) -> int:
    return sum(len(chunks) for chunks in retriever.library.document_chunks().values())


async def keep_calibrated(settings: Settings, retriever: Retriever, every_s: float) -> None:
    """The app's background task: use the stored calibration if it still fits the corpus, else calibrate
    (off the event loop, never delaying a question), and again whenever the corpus has changed by more
    than REFIT_CHANGE of its chunks. A RAG_SUPPORT_MODEL set by the user is left alone."""
    if settings.support_model is not None:
        return
    store = calibration_store(settings)
    current = await asyncio.to_thread(store.load)
    while True:
        chunks = chunk_count(retriever)
        if current is not None and not current.stale(chunks):
            retriever.index.support_model = current.model
        else:
            try:
                fresh = await asyncio.to_thread(calibrate_now, settings, retriever)
            except Exception:  # noqa: BLE001 - calibration is an improvement: the prior keeps serving
                log.exception("support calibration failed; the shipped prior stays")
                fresh = None
            if fresh is not None:
                log.info("support %s, in %.1f s", fresh.summary(), fresh.seconds)
                await asyncio.to_thread(store.save, fresh)
                current = fresh
            else:  # too small (now): the shipped prior
                retriever.index.support_model = None
                current = None
        await asyncio.sleep(every_s)