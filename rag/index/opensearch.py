"""The index in an OpenSearch cluster (RAG_ENGINE=opensearch): one index that every app process shares.

Same scores as the local engines, by construction: the app analyses every chunk exactly as for them (every
language, stemmers, Marathi/Kannada prefixes, CJK bigrams) and indexes the resulting *terms*, joined by
spaces, into fields whose analyzer only splits on whitespace, so the server never re-analyses anything
(the way RAGFlow indexes its own tokens). The fields' similarity is BM25 with the app's k1 and b:
`LegacyBM25` on OpenSearch 3.x, which keeps the (k1+1) numerator factor the local engines use (3.x's
`BM25` is Lucene's without it: the same ranking, scores 1/(k1+1) as large), `BM25` on 2.x, which is that
legacy formula. The title field has b = 0, as locally. One shard by default, so idf and the average length
are the whole corpus's; with more shards every search runs as `dfs_query_then_fetch` (global statistics).

Support signals come from the server in the same round trip as the search (`_msearch`): the top passages,
the best SIGNAL_DEPTH scores, and each query term's document frequency in both fields (a `filters`
aggregation, which also counts the live chunks, N). Nothing is mocked in the tests: they run against a real
cluster (rag.index.opensearch_cluster).

Sync that loses nothing: each document has a manifest entry (source, content hash, state) in a second
index. A process claims a document before indexing it, with optimistic concurrency (`if_seq_no`), so two
processes never index the same change twice; a claim left by a process that died expires after
CLAIM_LEASE_S. A full reconciliation compares the folder with the manifests by content hash and repairs
both directions (new, changed, deleted), so a document deleted while the server was down is gone once it is
back. The chunk index itself is never the source of truth: the folder is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.documents.corpus import DocumentKey
from rag.errors import ConfigError, SearchUnavailable
from rag.index.analysis import Analyzer
from rag.index.engines import lucene_idf
from rag.index.search import (TITLE_B, build_index, index_text, query_terms, search_index, signals_from_statistics,
                              title_text)
from rag.index.support import SIGNAL_DEPTH, SupportModel, calibration_label, shipped_model
from rag.types import Chunk, Passage, SearchResult, SupportSignals

log = logging.getLogger(__name__)

CLAIM_LEASE_S = 300.0  # a claim older than this belongs to a process that died: another may take it over
BULK_CHUNKS = 500  # chunks per bulk request
BATCH_DOCUMENTS = 200  # documents claimed, written and released together
_STORED = ("source", "chunk", "content_hash", "text", "start", "end", "title", "heading", "page", "n_tokens")
Progress = Callable[[int, int], None]  # (documents done, documents to do)


@dataclass(frozen=True)
class OpenSearchOptions:
    """How to reach the cluster and shape the index (built from Settings by rag.runtime)."""

    urls: tuple[str, ...]
    index: str = "rag-chunks"
    user: str | None = None
    password: str | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    shards: int = 1
    replicas: int = 0
    timeout_s: float = 10.0
    k1: float = 1.2
    b: float = 0.75
    title_weight: float = 0.0

    @property
    def where(self) -> str:
        """The nodes, for messages (never the password)."""
        return ", ".join(self.urls)


@dataclass(frozen=True)
class SyncReport:
    """What one reconciliation or update did (documents, not chunks)."""

    indexed: int = 0
    deleted: int = 0
    skipped: int = 0  # claimed by another process, or already current
    chunks: int = 0


def connect(options: OpenSearchOptions) -> Any:
    """An OpenSearch client over every node (a dead node is skipped), with TLS and auth as configured."""
    from opensearchpy import OpenSearch

    # The client logs every failed request with a traceback; the app reports the failure itself, once.
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {
        "hosts": list(options.urls), "timeout": options.timeout_s, "max_retries": 2, "retry_on_timeout": True,
        "http_compress": True,
    }
    if options.user:
        kwargs["http_auth"] = (options.user, options.password or "")
    if any(u.startswith("https://") for u in options.urls):
        kwargs.update(use_ssl=True, verify_certs=options.verify_certs, ssl_show_warn=options.verify_certs)
        if options.ca_certs is not None:
            kwargs["ca_certs"] = str(options.ca_certs)
        if not options.verify_certs:
            kwargs.update(ssl_assert_hostname=False)
    return OpenSearch(**kwargs)


def chunk_id(source: str, content_hash: str, index: int) -> str:
    """A chunk's id: stable for one version of a document, different for the next (ids stay short)."""
    return f"{hashlib.sha256(source.encode()).hexdigest()[:32]}-{content_hash[:16]}-{index}"


def manifest_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:40]


class OpenSearchIndex:
    """The index behind rag.index.retriever.Retriever when RAG_ENGINE=opensearch (see the module docstring)."""

    engine = "opensearch"
    segmented = False  # no background merge: the server merges its own segments
    snapshot = None  # no in-memory snapshot: `ready` says whether the index matches the library
    generation = 0

    def __init__(self, analyzer: Analyzer, options: OpenSearchOptions, support_model: SupportModel | None = None,
                 client: Any | None = None, progress: Progress | None = None) -> None:
        self.analyzer = analyzer
        self.options = options
        self.support_model = support_model
        self.progress = progress
        self.ready = False  # the index matched the library at the last sync (False: reconcile first)
        self.claimed_elsewhere = 0  # documents another process was indexing when we looked (tests, /stats)
        self._client = client
        self._terms_cache: dict[DocumentKey, Sequence[Sequence[str]]] = {}
        self._checked = False
        self._legacy: bool | None = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    # --- connection and index ------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.options)
        return self._client

    @property
    def manifest_index(self) -> str:
        return f"{self.options.index}-documents"

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one request; a server that cannot be reached becomes SearchUnavailable (the chat says so)."""
        from opensearchpy.exceptions import ConnectionError as TransportConnectionError
        from opensearchpy.exceptions import ConnectionTimeout, TransportError

        try:
            return call()
        except (TransportConnectionError, ConnectionTimeout) as exc:
            self.ready = False
            raise SearchUnavailable(self.options.where, f"{what}: cannot connect ({_reason(exc)})") from exc
        except TransportError as exc:
            if isinstance(exc.status_code, int) and exc.status_code >= 500 or exc.status_code == "N/A":
                self.ready = False
                raise SearchUnavailable(self.options.where, f"{what}: HTTP {exc.status_code} ({_reason(exc)})") from exc
            raise

    def health(self) -> str:
        """One line on the cluster (rag doctor, the greeting): version, nodes, status, chunks indexed."""
        info = self._call("info", self.client.info)
        health = self._call("health", lambda: self.client.cluster.health())
        count = 0
        if self._call("exists", lambda: self.client.indices.exists(index=self.options.index)):
            count = int(self._call("count", lambda: self.client.count(index=self.options.index))["count"])
        return (f"OpenSearch {info['version']['number']} at {self.options.where}: {health['number_of_nodes']} "
                f"node(s), status {health['status']}, {count:,} chunks in {self.options.index}")

    def ensure_index(self) -> None:
        """Create the chunk and manifest indexes if missing; refuse an index made with other scoring."""
        if self._checked:
            return
        legacy = self._legacy_bm25()
        body_similarity = {"type": "LegacyBM25" if legacy else "BM25", "k1": self.options.k1, "b": self.options.b}
        title_similarity = {**body_similarity, "b": TITLE_B}
        terms = {"type": "text", "analyzer": "rag_terms", "index_options": "freqs"}
        unindexed = {"type": "keyword", "index": False, "doc_values": False}
        number = {"type": "integer", "index": False, "doc_values": False}
        chunk_index = {
            "settings": {
                "number_of_shards": self.options.shards, "number_of_replicas": self.options.replicas,
                "similarity": {"rag_body": body_similarity, "rag_title": title_similarity},
                # The app's terms are final: split on spaces only, never lower-cased or cut (a whitespace
                # tokenizer cuts at 255 characters by default).
                "analysis": {"tokenizer": {"rag_space": {"type": "whitespace", "max_token_length": 4096}},
                             "analyzer": {"rag_terms": {"type": "custom", "tokenizer": "rag_space"}}},
            },
            "mappings": {"dynamic": "strict", "properties": {
                "body": {**terms, "similarity": "rag_body"},
                "title_terms": {**terms, "similarity": "rag_title"},
                "source": {"type": "keyword"}, "content_hash": {"type": "keyword"}, "chunk": {"type": "integer"},
                "text": {"type": "text", "index": False}, "title": unindexed, "heading": unindexed,
                "page": number, "start": number, "end": number, "n_tokens": number,
            }},
        }
        manifest = {
            "settings": {"number_of_shards": 1, "number_of_replicas": self.options.replicas},
            "mappings": {"dynamic": "strict", "properties": {
                "source": {"type": "keyword"}, "content_hash": {"type": "keyword"}, "chunks": {"type": "integer"},
                "state": {"type": "keyword"}, "owner": {"type": "keyword"}, "at": {"type": "double"},
            }},
        }
        for name, body in ((self.options.index, chunk_index), (self.manifest_index, manifest)):
            if not self._call("exists", lambda n=name: self.client.indices.exists(index=n)):  # type: ignore[misc]
                self._create(name, body)
        self._check_scoring(body_similarity)
        self._checked = True

    def _legacy_bm25(self) -> bool:
        if self._legacy is None:
            version = str(self._call("info", self.client.info)["version"]["number"])
            self._legacy = int(version.split(".")[0]) >= 3
        return self._legacy

    def _create(self, name: str, body: Mapping[str, Any]) -> None:
        from opensearchpy.exceptions import RequestError

        try:
            self._call("create index", lambda: self.client.indices.create(index=name, body=body))
            log.info("created OpenSearch index %s", name)
        except RequestError as exc:
            if "resource_already_exists" not in str(exc):  # another process created it a moment ago
                raise ConfigError(f"OpenSearch refused to create the index {name}: {_reason(exc)}") from exc

    def _check_scoring(self, expected: Mapping[str, Any]) -> None:
        """An index made with other k1/b, or whose fields do not use the app's analyzer, would score
        differently without a word of warning: refuse it (the fix is a new index name, or deleting it)."""
        name = self.options.index
        settings = self._call("settings", lambda: self.client.indices.get_settings(index=name))
        actual = next(iter(settings.values()))["settings"]["index"].get("similarity", {}).get("rag_body", {})
        mapping = next(iter(self._call("mapping", lambda: self.client.indices.get_mapping(index=name)).values()))
        fields = mapping["mappings"].get("properties", {})
        same = (actual.get("type") == expected["type"] and _close(actual.get("k1"), expected["k1"])
                and _close(actual.get("b"), expected["b"]) and fields.get("body", {}).get("analyzer") == "rag_terms")
        if not same:
            raise ConfigError(
                f"the OpenSearch index {name} was made with other scoring ({actual.get('type')}, k1={actual.get('k1')}, "
                f"b={actual.get('b')}, analyzer {fields.get('body', {}).get('analyzer')}) than the app's "
                f"({expected['type']}, k1={expected['k1']}, b={expected['b']}): set RAG_OPENSEARCH_INDEX to a new "
                "name (it is filled from the folder) or delete that index")

    # --- what the retriever needs of an index ----------------------------------------------------------

    def preload_terms(self, terms: Mapping[DocumentKey, Sequence[Sequence[str]]]) -> None:
        """Analysed terms from the store: a document indexed from them is not analysed again."""
        self._terms_cache.update(terms)

    @property
    def terms_cache(self) -> Mapping[DocumentKey, Sequence[Sequence[str]]]:
        return self._terms_cache

    def engine_key(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> str | None:
        return None  # nothing to save locally: the server keeps the index

    def prepare_updates(self) -> None:
        """Nothing to prepare: every update goes to the server as it comes."""

    def rebuild(self, documents: Mapping[DocumentKey, tuple[Chunk, ...]]) -> SyncReport:
        """Full reconciliation: make the index hold exactly these documents (by content hash), in both
        directions: new and changed documents indexed, documents no longer in the folder deleted."""
        self.ensure_index()
        manifests = self._manifests()
        wanted = {key[0]: key for key in documents}
        todo = [(key, documents[key]) for source, key in sorted(wanted.items())
                if manifests.get(source, {}).get("content_hash") != key[1] or manifests[source].get("state") != "done"]
        gone = sorted(set(manifests) - set(wanted))
        report = self._apply(todo, gone, manifests)
        # Documents another process was indexing are looked at again at the next sync, when its work is done.
        self.ready = report.skipped == 0
        if report.indexed or report.deleted or report.skipped:
            log.info("OpenSearch index reconciled: %d documents indexed (%d chunks), %d deleted, %d held by another "
                     "process", report.indexed, report.chunks, report.deleted, report.skipped)
        return report

    def update(self, added: Mapping[DocumentKey, tuple[Chunk, ...]], removed: Iterable[str]) -> SyncReport:
        """Apply one change of the library: documents added or changed, sources removed."""
        self.ensure_index()
        fresh = {key[0] for key in added}
        gone = sorted(set(removed) - fresh)
        manifests = self._manifests_of([*fresh, *gone])
        report = self._apply(sorted(added.items()), gone, manifests)
        self.ready = report.skipped == 0
        return report

    def _apply(self, todo: Sequence[tuple[DocumentKey, tuple[Chunk, ...]]], gone: Sequence[str],
               manifests: Mapping[str, Mapping[str, Any]]) -> SyncReport:
        """Index `todo` and delete `gone`, in batches: claim (one bulk request), write, release."""
        indexed = deleted = skipped = chunks = done = 0
        total = len(todo) + len(gone)
        for batch in _batches(todo, BATCH_DOCUMENTS, BULK_CHUNKS * 4, lambda item: len(item[1])):
            claims = self._claim_many([(key[0], key[1], len(c)) for key, c in batch], "indexing", manifests)
            ours = [(key, c) for key, c in batch if key[0] in claims]
            self._bulk(action for key, c in ours for action in self._actions(key[0], key[1], c, self._terms(key, c)))
            # Any earlier version goes once the new one is in: also when the manifest already names this hash
            # (a claim whose process died before writing leaves the old chunks behind).
            changed = [key for key, _ in ours if key[0] in manifests]
            if changed:
                self._delete_chunks({"bool": {"should": [
                    {"bool": {"filter": [{"term": {"source": s}}], "must_not": [{"term": {"content_hash": h}}]}}
                    for s, h in changed], "minimum_should_match": 1}})
            self._release_many(claims.values(), "done")
            indexed += len(ours)
            current = sum(1 for key, _ in batch if manifests.get(key[0], {}).get("content_hash") == key[1]
                          and manifests[key[0]].get("state") == "done")
            skipped += len(batch) - len(ours) - current  # held by another process (current ones are no news)
            chunks += sum(len(c) for _, c in ours)
            done += len(batch)
            if self.progress is not None:
                self.progress(done, total)
        for start in range(0, len(gone), BATCH_DOCUMENTS):
            batch_gone = gone[start:start + BATCH_DOCUMENTS]
            claims = self._claim_many(
                [(s, str(manifests.get(s, {}).get("content_hash", "")), 0) for s in batch_gone], "deleting", manifests)
            if claims:
                self._delete_chunks({"terms": {"source": sorted(claims)}})
                self._release_many(claims.values(), None)
                self._terms_cache = {k: v for k, v in self._terms_cache.items() if k[0] not in claims}
            deleted += len(claims)
            skipped += len(batch_gone) - len(claims)
            done += len(batch_gone)
            if self.progress is not None:
                self.progress(done, total)
        if indexed or deleted:
            self._call("refresh", lambda: self.client.indices.refresh(index=self.options.index))
        return SyncReport(indexed, deleted, skipped, chunks)

    # --- claims: one process per change ------------------------------------------------------------------

    def _manifests(self) -> dict[str, dict[str, Any]]:
        """Every manifest entry by source (paged, so any number of documents)."""
        found: dict[str, dict[str, Any]] = {}
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": 5000, "sort": [{"source": "asc"}], "query": {"match_all": {}},
                                    "seq_no_primary_term": True}
            if after is not None:
                body["search_after"] = after
            page = self._call("list documents", lambda b=body: self.client.search(index=self.manifest_index, body=b))  # type: ignore[misc]
            hits = page["hits"]["hits"]
            for hit in hits:
                found[hit["_source"]["source"]] = _entry(hit)
            if len(hits) < 5000:
                return found
            after = hits[-1]["sort"]

    def _manifests_of(self, sources: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The manifest entries of these sources (one request)."""
        if not sources:
            return {}
        docs = self._call("read documents", lambda: self.client.mget(
            index=self.manifest_index, body={"ids": [manifest_id(s) for s in sources]}))["docs"]
        return {d["_source"]["source"]: _entry(d) for d in docs if d.get("found")}

    def _claim_many(self, wanted: Sequence[tuple[str, str, int]], state: str,
                    manifests: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Take these documents (source, content hash, chunks) for `state` ("indexing" or "deleting") in one
        bulk request; returns the ones we hold. A document whose manifest moved since we read it (another
        process claimed it: HTTP 409), or that another process holds a live claim on for the same change,
        is left to that process."""
        actions: list[dict[str, Any]] = []
        entries: dict[str, dict[str, Any]] = {}
        now = time.time()
        for source, content_hash, count in wanted:
            current = manifests.get(source)
            if current is not None and current.get("content_hash") == content_hash:
                if state == "indexing" and current.get("state") == "done":
                    continue  # current already: nothing to do, nothing skipped
                live = now - float(current.get("at") or 0) < CLAIM_LEASE_S
                if current.get("state") == state and live and current.get("owner") != self._owner:
                    self.claimed_elsewhere += 1
                    continue
            entry = {"source": source, "content_hash": content_hash, "chunks": count, "state": state,
                     "owner": self._owner, "at": now}
            action: dict[str, Any] = {"_index": self.manifest_index, "_id": manifest_id(source), "_source": entry}
            if current is None:
                action["_op_type"] = "create"
            else:
                action.update(_op_type="index", if_seq_no=current["_seq_no"], if_primary_term=current["_primary_term"])
            actions.append(action)
            entries[source] = entry
        held: dict[str, dict[str, Any]] = {}
        by_id = {manifest_id(source): source for source in entries}
        for ok, item in self._bulk_items(actions):
            result = next(iter(item.values()))
            claimed = by_id.get(result["_id"])
            if ok and claimed is not None:
                held[claimed] = {**entries[claimed], "_seq_no": result["_seq_no"], "_primary_term": result["_primary_term"]}
            elif claimed is not None:
                self.claimed_elsewhere += 1
        return held

    def _release_many(self, claims: Iterable[Mapping[str, Any]], state: str | None) -> None:
        """Mark our claims done (state "done") or remove the entries (None), each only if still ours: a
        document another process took over meanwhile is left to it."""
        actions: list[dict[str, Any]] = []
        for claim in claims:
            source = str(claim["source"])
            action: dict[str, Any] = {"_index": self.manifest_index, "_id": manifest_id(source),
                                      "if_seq_no": claim["_seq_no"], "if_primary_term": claim["_primary_term"]}
            if state is None:
                action["_op_type"] = "delete"
            else:
                entry = {k: v for k, v in claim.items() if not k.startswith("_")} | {"state": state, "at": time.time()}
                action.update(_op_type="index", _source=entry)
            actions.append(action)
        for ok, item in self._bulk_items(actions):
            if not ok:
                log.info("a document was taken over by another process meanwhile: %s", str(item)[:200])

    def _bulk_items(self, actions: Sequence[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
        """Each action's (succeeded, item); 409 and 404 are answers here (another process moved first)."""
        from opensearchpy import helpers

        if not actions:
            return []
        return list(self._call("claim", lambda: list(helpers.streaming_bulk(
            self.client, actions, chunk_size=BULK_CHUNKS, raise_on_error=False, raise_on_exception=True,
            refresh="true"))))

    def _delete_chunks(self, query: Mapping[str, Any]) -> None:
        self._call("delete", lambda: self.client.delete_by_query(
            index=self.options.index, body={"query": query}, conflicts="proceed", refresh=True))

    def _terms(self, key: DocumentKey, chunks: Sequence[Chunk]) -> Sequence[Sequence[str]]:
        cached = self._terms_cache.get(key)
        if cached is None or len(cached) != len(chunks):
            cached = [self.analyzer.terms(index_text(c)) for c in chunks]
            self._terms_cache[key] = cached
        return cached

    def _actions(self, source: str, content_hash: str, chunks: Sequence[Chunk],
                 terms: Sequence[Sequence[str]]) -> Iterator[dict[str, Any]]:
        for chunk, chunk_terms in zip(chunks, terms):
            yield {"_index": self.options.index, "_id": chunk_id(source, content_hash, chunk.index),
                   "_source": chunk_document(chunk, content_hash, chunk_terms, self.analyzer.terms(title_text(chunk)))}

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> int:
        """Send index actions in bulk requests; the number written. Any refused chunk is an error."""
        from opensearchpy import helpers

        written, errors = self._call("bulk index", lambda: helpers.bulk(
            self.client, actions, chunk_size=BULK_CHUNKS, max_retries=3, raise_on_error=False, stats_only=False))
        if errors:
            raise SearchUnavailable(self.options.where, f"{len(errors)} chunks refused: {str(errors[0])[:300]}")
        return int(written)

    def load(self, chunks: Iterable[tuple[Chunk, str]], progress: Callable[[int], None] | None = None) -> int:
        """Bulk-load chunks (with their document's content hash) straight into the chunk index, streaming:
        nothing is held in memory. For benchmarks and one-off loads of data that has no folder; the app's
        own documents go through `rebuild`/`update`, which keep the manifest. Returns the chunks written."""
        self.ensure_index()
        written = 0

        def actions() -> Iterator[dict[str, Any]]:
            nonlocal written
            for chunk, content_hash in chunks:
                yield {"_index": self.options.index, "_id": chunk_id(chunk.source, content_hash, chunk.index),
                       "_source": chunk_document(chunk, content_hash, self.analyzer.terms(index_text(chunk)),
                                                 self.analyzer.terms(title_text(chunk)))}
                written += 1
                if progress is not None and written % BULK_CHUNKS == 0:
                    progress(written)

        self._bulk(actions())
        self._call("refresh", lambda: self.client.indices.refresh(index=self.options.index))
        if progress is not None:
            progress(written)
        return written

    def heap_mb(self) -> float:
        """The JVM heap in use on all nodes together (MB)."""
        stats = self._call("node stats", lambda: self.client.nodes.stats(metric="jvm"))
        return float(sum(n["jvm"]["mem"]["heap_used_in_bytes"] for n in stats["nodes"].values())) / 2**20

    # --- search --------------------------------------------------------------------------------------

    def search(self, query: str, k: int, sources: frozenset[str] | None = None, earlier: str = "") -> SearchResult:
        """The k best passages and the support signals, in one round trip to the server (`earlier`: the
        previous question, for a follow-up; its terms boosted down to EARLIER_WEIGHT, as locally)."""
        weighted = query_terms(self.analyzer, query, earlier)
        groups = weighted.groups
        if sources is not None:
            return self._search_within(query, k, sources, earlier)
        terms = weighted.terms
        if not terms:
            return SearchResult(query, (), SupportSignals.empty(len(groups)), ())
        self.ensure_index()
        scored = self._query(weighted.weights)
        search_type = {"search_type": "dfs_query_then_fetch"} if self.options.shards > 1 else {}
        head = {"index": self.options.index, **search_type}
        stats = {"size": 0, "track_total_hits": True, "query": {"match_all": {}}, "aggs": {
            "body": {"filters": {"filters": {t: {"term": {"body": t}} for t in terms}}},
            "title": {"filters": {"filters": {t: {"term": {"title_terms": t}} for t in terms}}},
        }}
        lines = [head, {"query": scored, "size": k, "track_total_hits": False, "_source": {"excludes": ["title_terms"]}},
                 head, {"query": scored, "size": max(k, SIGNAL_DEPTH), "track_total_hits": False, "_source": False},
                 {"index": self.options.index}, stats]
        responses = self._call("search", lambda: self.client.msearch(body=lines))["responses"]
        for response in responses:
            if "error" in response:
                raise SearchUnavailable(self.options.where, f"search failed: {str(response['error'])[:300]}")
        top, depth, counts = responses
        n = int(counts["hits"]["total"]["value"])
        body_df = {t: int(b["doc_count"]) for t, b in counts["aggregations"]["body"]["buckets"].items()}
        title_df = {t: int(b["doc_count"]) for t, b in counts["aggregations"]["title"]["buckets"].items()}
        if not any(body_df.values()):  # as locally: a title alone does not make a passage relevant
            return SearchResult(query, (), SupportSignals.empty(len(groups)), tuple(terms))
        hits = top["hits"]["hits"]
        passages = tuple(Passage(chunk_from(h["_source"]), float(h["_score"]), rank)
                         for rank, h in enumerate(hits, start=1))
        scores = [float(h["_score"]) for h in depth["hits"]["hits"]]
        present = frozenset(hits[0]["_source"]["body"].split()) if hits else frozenset()
        idf = {t: lucene_idf(body_df[t], n) for t in terms}
        titled = self.options.title_weight > 0
        signals = signals_from_statistics(
            groups, scores, present, idf, lucene_idf(0, n),
            {t: lucene_idf(title_df[t], n) for t in terms} if titled else None,
            self.options.k1, self.options.title_weight, self.support_model or shipped_model(), weighted.weights)
        return SearchResult(query, passages, signals, tuple(terms), calibration_label(self.support_model))

    def _query(self, weights: Mapping[str, float]) -> dict[str, Any]:
        """Body BM25 plus the title field's BM25 times its weight, each term boosted by its own weight:
        the local engines' sum, term by term."""
        should: list[dict[str, Any]] = [
            {"term": {"body": t}} if w == 1.0 else {"term": {"body": {"value": t, "boost": w}}} for t, w in weights.items()]
        if self.options.title_weight > 0:
            should += [{"term": {"title_terms": {"value": t, "boost": self.options.title_weight * w}}}
                       for t, w in weights.items()]
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _search_within(self, query: str, k: int, sources: frozenset[str], earlier: str = "") -> SearchResult:
        """Only these documents (attached to a message): their chunks searched on their own, as locally."""
        self.ensure_index()
        body = {"size": 10_000, "query": {"bool": {"filter": [{"terms": {"source": sorted(sources)}}]}},
                "sort": [{"source": "asc"}, {"chunk": "asc"}]}
        hits = self._call("search", lambda: self.client.search(index=self.options.index, body=body))["hits"]["hits"]
        chunks = [chunk_from(h["_source"]) for h in hits]
        terms = [h["_source"]["body"].split() for h in hits]
        snapshot = build_index(chunks, self.analyzer, "auto", self.options.k1, self.options.b, terms,
                               title_weight=self.options.title_weight)
        result = search_index(snapshot, self.analyzer, query, k, model=self.support_model, earlier=earlier)
        passages = list(result.passages)
        seen = {(p.chunk.source, p.chunk.index) for p in passages}
        for chunk in chunks:  # the question matched fewer than k of their chunks: the rest in reading order
            if len(passages) >= k:
                break
            if (chunk.source, chunk.index) not in seen:
                passages.append(Passage(chunk, 0.0, len(passages) + 1))
        return SearchResult(query, tuple(passages), result.signals, result.analysed_terms)

    def context(self, chunk: Chunk, limit: int = 1500) -> tuple[str, str]:
        """The document's text just before and just after `chunk`, from its neighbouring chunks."""
        body = {"size": 4, "query": {"bool": {"filter": [
            {"term": {"source": chunk.source}}, {"terms": {"chunk": [chunk.index - 1, chunk.index + 1]}}]}}}
        try:
            hits = self._call("context", lambda: self.client.search(index=self.options.index, body=body))["hits"]["hits"]
        except SearchUnavailable:
            return "", ""
        near = {h["_source"]["chunk"]: chunk_from(h["_source"]) for h in hits}
        before, after = near.get(chunk.index - 1), near.get(chunk.index + 1)
        text_before = before.text[: max(0, chunk.start - before.start)] if before else ""
        text_after = after.text[max(0, chunk.end - after.start):] if after else ""
        return text_before[-limit:], text_after[:limit]

    def count(self) -> int:
        """Chunks in the index (live)."""
        return int(self._call("count", lambda: self.client.count(index=self.options.index))["count"])


def chunk_document(chunk: Chunk, content_hash: str, terms: Sequence[str], title_terms: Sequence[str]) -> dict[str, Any]:
    """What is stored for a chunk: its analysed terms (scored) and everything needed to cite it."""
    return {"source": chunk.source, "chunk": chunk.index, "content_hash": content_hash, "text": chunk.text,
            "start": chunk.start, "end": chunk.end, "title": chunk.title, "heading": chunk.heading,
            "page": chunk.page, "n_tokens": chunk.n_tokens, "body": " ".join(terms),
            "title_terms": " ".join(title_terms)}


def chunk_from(stored: Mapping[str, Any]) -> Chunk:
    """The chunk a stored document holds."""
    return Chunk(str(stored["source"]), int(stored["chunk"]), str(stored["text"]), int(stored["start"]),
                 int(stored["end"]), str(stored.get("title") or ""), stored.get("heading"), stored.get("page"),
                 int(stored.get("n_tokens") or 0))


def _entry(hit: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest entry with the version that optimistic concurrency needs."""
    return {**hit["_source"], "_seq_no": hit["_seq_no"], "_primary_term": hit["_primary_term"]}


def _batches(items: Sequence[Any], most: int, weight_limit: int, weight: Callable[[Any], int]) -> Iterator[list[Any]]:
    """Consecutive batches of at most `most` items and about `weight_limit` weight (e.g. chunks)."""
    batch: list[Any] = []
    held = 0
    for item in items:
        if batch and (len(batch) >= most or held + weight(item) > weight_limit):
            yield batch
            batch, held = [], 0
        batch.append(item)
        held += weight(item)
    if batch:
        yield batch


def _close(value: object, expected: float) -> bool:
    try:
        return abs(float(str(value)) - expected) < 1e-6
    except ValueError:
        return False


def _reason(exc: BaseException) -> str:
    info = getattr(exc, "info", None)
    if isinstance(info, Mapping):
        error = info.get("error")
        if isinstance(error, Mapping):
            return str(error.get("reason") or error.get("type") or error)[:300]
    text = str(exc.__cause__ or exc.__context__ or exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\)\]]+)", text)  # urllib3 wraps the one part that says why
    if errno:
        return errno.group(1).strip().lower()
    return text[:300] or type(exc).__name__
