"""RAG_ENGINE=opensearch against a real cluster (no mock of the server): the same scores and support as the
local engines, sync that loses nothing, and faults that are reported, not raised as tracebacks."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ConfigError, SearchUnavailable
from rag.index.analysis import Analyzer
from rag.index.opensearch import OpenSearchIndex, OpenSearchOptions
from rag.index.search import build_index, search_index
from rag.runtime import build_retriever, opensearch_options
from rag.types import Chunk
from tests.conftest import REPO

QUESTIONS = [
    "Which port does Ollama use?", "When does phi-4-mini escalate to gpt-oss-20b?", "How do I run Foundry Local?",
    "What does time to first token mean?", "How do I upload a PDF?", "Which port does LM Studio listen on?",
    "What is BM25?", "How are conversations kept?", "vLLM reasoning field", "llama.cpp server logprobs",
]


def _index_name() -> str:
    return f"rag-test-{uuid.uuid4().hex[:12]}"


def _settings(corpus: Path, url: str, index: str, **extra: object) -> Settings:
    return Settings(corpus_dir=corpus, engine="opensearch", opensearch_url=url, opensearch_index=index,
                    data_dir=corpus.parent / f"data-{index}", _env_file=None, **extra)  # type: ignore[arg-type]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(REPO / "docs_corpus", folder, ignore=shutil.ignore_patterns("uploads"))
    return folder


def _ranked(result) -> list[tuple[str, int]]:
    return [(p.chunk.source, p.chunk.index) for p in result.passages]


def test_the_bundled_corpus_scores_as_the_local_engines(corpus: Path, opensearch_url: str) -> None:
    remote = build_retriever(_settings(corpus, opensearch_url, _index_name()))
    remote.warm_up()
    local = build_retriever(Settings(corpus_dir=corpus, engine="bm25s", data_dir=corpus.parent / "local", _env_file=None))
    local.warm_up()
    for question in QUESTIONS:
        theirs, ours = remote.index.search(question, 5), local.index.search(question, 5)
        assert _ranked(theirs)[:1] == _ranked(ours)[:1], question
        assert len(set(_ranked(theirs)) & set(_ranked(ours))) >= 4, question
        # Lucene keeps document lengths in one byte (lossy), so scores agree to within about 1%.
        assert theirs.passages[0].score == pytest.approx(ours.passages[0].score, rel=0.02), question
        assert abs(theirs.signals.support - ours.signals.support) <= 0.02, question
        assert theirs.analysed_terms == ours.analysed_terms
        assert theirs.passages[0].chunk == ours.passages[0].chunk  # text and provenance come back whole


def test_a_follow_up_is_weighted_as_locally(corpus: Path, opensearch_url: str) -> None:
    """The previous question's words boosted down to EARLIER_WEIGHT on the server, as the local sum does."""
    remote = build_retriever(_settings(corpus, opensearch_url, _index_name()))
    remote.warm_up()
    local = build_retriever(Settings(corpus_dir=corpus, engine="bm25s", data_dir=corpus.parent / "local", _env_file=None))
    local.warm_up()
    for previous, question in [("Which port does Ollama use?", "and how fast is it?"),
                               ("How do I upload a PDF?", "Is there a size limit for them?"),
                               ("Which port does Ollama use?", "What about LM Studio?")]:
        theirs, ours = remote.index.search(question, 5, None, previous), local.index.search(question, 5, None, previous)
        assert _ranked(theirs)[:1] == _ranked(ours)[:1], question
        assert theirs.passages[0].score == pytest.approx(ours.passages[0].score, rel=0.02), question
        assert abs(theirs.signals.support - ours.signals.support) <= 0.02, question
        assert theirs.analysed_terms == ours.analysed_terms


def test_attached_documents_are_searched_on_their_own_as_locally(corpus: Path, opensearch_url: str) -> None:
    remote = build_retriever(_settings(corpus, opensearch_url, _index_name()))
    remote.warm_up()
    local = build_retriever(Settings(corpus_dir=corpus, engine="bm25s", data_dir=corpus.parent / "local", _env_file=None))
    local.warm_up()
    focus = frozenset({"servers/ollama.md", "servers/lm-studio.md"})
    theirs = remote.index.search("Summarize the files I attached", 5, focus)
    ours = local.index.search("Summarize the files I attached", 5, focus)
    assert _ranked(theirs) == _ranked(ours) and {p.chunk.source for p in theirs.passages} <= focus
    chunk = theirs.passages[0].chunk
    assert remote.index.context(chunk) == local.index.context(chunk)


def test_every_change_the_library_records_reaches_the_index(corpus: Path, opensearch_url: str) -> None:
    import asyncio

    retriever = build_retriever(_settings(corpus, opensearch_url, _index_name()))
    retriever.warm_up()
    (corpus / "okapi.md").write_text("# Okapi\n\nThe okapi census counted 4,412 okapis in the Ituri forest.")
    asyncio.run(retriever.refresh())
    assert retriever.index.search("okapi census", 3).passages[0].chunk.source == "okapi.md"
    (corpus / "okapi.md").write_text("# Okapi\n\nThe okapi census was repeated: 5,001 okapis in the Ituri forest.")
    asyncio.run(retriever.refresh())
    found = retriever.index.search("okapi census", 10).passages
    assert [p.chunk.source for p in found].count("okapi.md") == 1 and "5,001" in found[0].chunk.text  # no stale copy
    outcome = asyncio.run(retriever.add_upload("walrus.md", b"# Walrus\n\nThe walrus project shipped in March."))
    assert outcome.status == "added"
    assert retriever.index.search("walrus project", 3).passages[0].chunk.source == outcome.source  # searchable at once
    asyncio.run(retriever.remove_document(str(outcome.source)))
    (corpus / "okapi.md").unlink()
    asyncio.run(retriever.refresh())
    assert not any(p.chunk.source in ("okapi.md", outcome.source) for p in retriever.index.search("okapi walrus", 10).passages)


def test_a_reconciliation_repairs_both_directions_after_changes_made_while_no_app_ran(
        corpus: Path, opensearch_url: str) -> None:
    index = _index_name()
    build_retriever(_settings(corpus, opensearch_url, index)).warm_up()
    # Nothing runs: a file is deleted, one edited, one added (as a folder sync or a person would).
    (corpus / "servers" / "ollama.md").unlink()
    (corpus / "servers" / "lm-studio.md").write_text("# LM Studio\n\nLM Studio now listens on port 4321.")
    (corpus / "new.md").write_text("# New\n\nThe narwhal note.")
    retriever = build_retriever(_settings(corpus, opensearch_url, index))
    retriever.warm_up()
    index_ = retriever.index
    assert isinstance(index_, OpenSearchIndex)
    sources = {p.chunk.source for p in index_.search("ollama port 11434 narwhal studio", 50).passages}
    assert "servers/ollama.md" not in sources and "new.md" in sources
    lm = [p for p in index_.search("LM Studio port", 10).passages if p.chunk.source == "servers/lm-studio.md"]
    assert len(lm) == 1 and "4321" in lm[0].chunk.text
    served = sum(d.chunks for d in retriever.library.documents() if d.status == "ok")
    assert index_.count() == served  # exactly the folder's chunks, nothing left over


def test_two_processes_never_index_the_same_change_twice(corpus: Path, opensearch_url: str) -> None:
    index = _index_name()
    first, second = (build_retriever(_settings(corpus, opensearch_url, index)) for _ in range(2))
    for retriever in (first, second):
        retriever.library.scan()
    documents = first.library.document_chunks()
    reports = {}
    barrier = threading.Barrier(2)

    def sync(name: str, retriever) -> None:
        barrier.wait()
        reports[name] = retriever.index.rebuild(retriever.library.document_chunks())

    workers = [threading.Thread(target=sync, args=(n, r)) for n, r in (("first", first), ("second", second))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert reports["first"].indexed + reports["second"].indexed == len(documents)  # each document once
    for retriever in (first, second):  # whoever skipped a document looks again and finds it done
        shared = retriever.index
        assert isinstance(shared, OpenSearchIndex)
        report = shared.rebuild(retriever.library.document_chunks())
        assert report.indexed == 0 and report.deleted == 0 and shared.ready
        assert shared.count() == sum(len(c) for c in documents.values())


def test_an_index_made_with_other_scoring_is_refused(corpus: Path, opensearch_url: str) -> None:
    index = _index_name()
    build_retriever(_settings(corpus, opensearch_url, index)).warm_up()
    other = build_retriever(_settings(corpus, opensearch_url, index, bm25_k1=2.0))
    with pytest.raises(ConfigError, match="made with other scoring"):
        other.warm_up()


class Gate:
    """A TCP forwarder in front of a node: open, it passes traffic; closed, nothing listens (connection
    refused), as when the server is down."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        """Down: no new connections, and the open ones cut (a server that died)."""
        if self._server is not None:
            try:  # wakes the accepting thread; close() alone leaves it accepting on Linux
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        for connection in self._open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()
        self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def gate(opensearch_url: str) -> Iterator[Gate]:
    gate = Gate(opensearch_url.split(",")[0])
    yield gate
    gate.close()


def test_a_server_down_at_start_is_reported_and_what_changed_meanwhile_is_indexed_on_its_return(
        corpus: Path, gate: Gate) -> None:
    import asyncio

    retriever = build_retriever(_settings(corpus, gate.url, _index_name(), opensearch_timeout_s=2))
    with pytest.raises(SearchUnavailable) as down:
        retriever.warm_up()
    assert f"search is unreachable at {gate.url}" in str(down.value) and "cannot connect" in str(down.value)
    with pytest.raises(SearchUnavailable):
        asyncio.run(retriever.search("Which port does Ollama use?", 3))
    # An upload while search is down is kept in the folder, and says it waits for search.
    outcome = asyncio.run(retriever.add_upload("okapi.md", b"# Okapi\n\nThe okapi census counted 4,412 okapis."))
    assert outcome.status == "added" and (corpus / str(outcome.source)).is_file()
    assert outcome.pending and "search is unreachable" in outcome.pending
    gate.open()
    result = asyncio.run(retriever.search("okapi census", 3))
    assert result.passages[0].chunk.source == outcome.source  # reconciled on return: the upload is in
    assert asyncio.run(retriever.search("Which port does Ollama use?", 3)).passages[0].chunk.source == "servers/ollama.md"


def test_a_document_deleted_while_the_server_was_down_is_gone_once_it_is_back(corpus: Path, gate: Gate) -> None:
    import asyncio

    gate.open()
    retriever = build_retriever(_settings(corpus, gate.url, _index_name(), opensearch_timeout_s=2))
    retriever.warm_up()
    assert asyncio.run(retriever.search("Ollama port", 3)).passages[0].chunk.source == "servers/ollama.md"
    gate.close()
    (corpus / "servers" / "ollama.md").unlink()
    with pytest.raises(SearchUnavailable):
        asyncio.run(retriever.refresh())
    gate.open()
    found = asyncio.run(retriever.search("Ollama port 11434", 10)).passages
    assert all(p.chunk.source != "servers/ollama.md" for p in found)


def test_options_come_from_the_settings_with_secrets_revealed_only_there(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=REPO / "docs_corpus", engine="opensearch",
                        opensearch_url="https://a.example:9200, https://b.example:9200/", opensearch_user="rag",
                        opensearch_password="s3cret", opensearch_verify_certs=False, opensearch_shards=2,
                        _env_file=None)
    options = opensearch_options(settings)
    assert options.urls == ("https://a.example:9200", "https://b.example:9200") and options.shards == 2
    assert options.password == "s3cret" and "s3cret" not in repr(settings) and "s3cret" not in options.where
    for bad in ("ftp://x:9200", "http://x:99999", "", "http://a b:9200"):
        with pytest.raises(ValueError):
            Settings(corpus_dir=REPO / "docs_corpus", opensearch_url=bad, _env_file=None)
    with pytest.raises(ValueError):
        Settings(corpus_dir=REPO / "docs_corpus", opensearch_index="Upper", _env_file=None)


# --- SciFact: the parity the issue asks for ----------------------------------------------------------------

SCIFACT = REPO.parent / "shared" / "data" / "beir" / "scifact"


def test_scifact_ranks_and_supports_as_bm25s(opensearch_url: str) -> None:
    from rag.beir import load_beir
    from rag.metrics import ndcg_at_k

    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {SCIFACT}")
    dataset = load_beir(SCIFACT, "test")
    analyzer = Analyzer()
    chunks = [Chunk(source=i, index=0, text=text, start=0, end=len(text), title=title) for i, title, text in dataset.docs]
    settings = Settings(corpus_dir=REPO / "docs_corpus", _env_file=None)
    local = build_index(chunks, analyzer, "bm25s", settings.bm25_k1, settings.bm25_b, title_weight=settings.title_weight)
    options = OpenSearchOptions(urls=tuple(opensearch_url.split(",")), index=_index_name(), k1=settings.bm25_k1,
                                b=settings.bm25_b, title_weight=settings.title_weight)
    remote = OpenSearchIndex(analyzer, options)
    documents = {(c.source, hashlib.sha256(c.text.encode()).hexdigest()): (c,) for c in chunks}
    remote.rebuild(documents)
    assert remote.count() == len(chunks)
    ndcg_local, ndcg_remote, overlaps, support_close = [], [], [], 0
    for query_id, text in dataset.queries.items():
        ours, theirs = search_index(local, analyzer, text, 10), remote.search(text, 10)
        ranked_ours, ranked_theirs = [p.chunk.source for p in ours.passages], [p.chunk.source for p in theirs.passages]
        ndcg_local.append(ndcg_at_k(ranked_ours, dataset.qrels[query_id], 10))
        ndcg_remote.append(ndcg_at_k(ranked_theirs, dataset.qrels[query_id], 10))
        overlaps.append(len(set(ranked_ours) & set(ranked_theirs)) / max(len(ranked_ours), 1))
        support_close += abs(ours.signals.support - theirs.signals.support) <= 0.02
    n = len(dataset.queries)
    assert abs(sum(ndcg_remote) / n - sum(ndcg_local) / n) <= 0.005
    assert sum(overlaps) / n >= 0.95
    assert support_close / n >= 0.95


def test_rag_corpus_sync_and_search_and_doctor_through_the_cli(corpus: Path, opensearch_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from rag.cli.main import cli

    for name, value in {"RAG_ENGINE": "opensearch", "RAG_OPENSEARCH_URL": opensearch_url,
                        "RAG_OPENSEARCH_INDEX": _index_name(), "RAG_CORPUS_DIR": str(corpus),
                        "RAG_DATA_DIR": str(corpus.parent / "data-cli"), "RAG_BASE_URL": "http://127.0.0.1:9/v1"}.items():
        monkeypatch.setenv(name, value)
    synced = CliRunner().invoke(cli, ["corpus", "sync"])
    assert synced.exit_code == 0, synced.output
    assert "documents indexed" in synced.output and "0 deleted" in synced.output
    again = CliRunner().invoke(cli, ["corpus", "sync"])  # nothing changed: nothing to do
    assert again.output.splitlines()[-1].startswith("0 documents indexed (0 chunks), 0 deleted")
    found = CliRunner().invoke(cli, ["search", "Which port does Ollama use?", "--json"])
    assert found.exit_code == 0 and '"path": "servers/ollama.md"' in found.output
    doctor = CliRunner().invoke(cli, ["doctor", "--no-request"])
    assert "search: OpenSearch " in doctor.output and "status " in doctor.output
    monkeypatch.setenv("RAG_OPENSEARCH_URL", "http://127.0.0.1:9")
    down = CliRunner().invoke(cli, ["doctor", "--no-request"])
    assert "search: UNREACHABLE: search is unreachable at http://127.0.0.1:9" in down.output and down.exit_code == 1
    failed = CliRunner().invoke(cli, ["search", "ollama"])
    assert failed.exit_code == 1 and "search is unreachable" in failed.output and "Traceback" not in failed.output


def test_a_claim_left_by_a_process_that_died_leaves_no_old_version_behind(corpus: Path, opensearch_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index_name()
    first = build_retriever(_settings(corpus, opensearch_url, index))
    first.warm_up()
    (corpus / "servers" / "lm-studio.md").write_text("# LM Studio\n\nLM Studio now listens on port 4321.")
    first.library.scan()
    key = next(k for k in first.library.document_chunks() if k[0] == "servers/lm-studio.md")
    dying = first.index
    assert isinstance(dying, OpenSearchIndex)
    manifests = dying._manifests()
    dying._claim_many([(key[0], key[1], 1)], "indexing", manifests)  # claimed the new version, then died
    monkeypatch.setattr("rag.index.opensearch.CLAIM_LEASE_S", 0.0)  # ... long enough ago for its claim to lapse
    later = build_retriever(_settings(corpus, opensearch_url, index))
    later.warm_up()
    shared = later.index
    assert isinstance(shared, OpenSearchIndex)
    passages = [p for p in shared.search("LM Studio port", 20).passages if p.chunk.source == "servers/lm-studio.md"]
    assert len(passages) == 1 and "4321" in passages[0].chunk.text  # the old version's chunks are gone
