"""A real OpenSearch cluster for tests, fetched from Maven Central and run as a non-root user
(rag.index.opensearch_cluster, the same code as `make opensearch`). Where it cannot run (no Maven, no Java
21+), the tests that need it are skipped with the reason, except in CI (CI=true), where `.ci/run` provides
everything and a missing cluster is a failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.index.opensearch_cluster import Cluster, ClusterError, find_java_home, start_cluster, stop_cluster


def missing_reason() -> str | None:
    """Why no cluster can start here, or None."""
    if shutil.which("mvn") is None:
        return "Maven (mvn) is not installed: it fetches OpenSearch from Maven Central"
    try:
        find_java_home()
    except ClusterError as exc:
        return f"no Java for OpenSearch: {exc}"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with the reason; in CI, where the cluster must run, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"OpenSearch tests must run in CI: {reason}")
    pytest.skip(reason)


@contextmanager
def opensearch_cluster(nodes: int) -> Iterator[Cluster]:
    """A fresh cluster of `nodes` nodes on free loopback ports, stopped and removed afterwards."""
    reason = missing_reason()
    if reason:
        skip_or_fail(reason)
    base = Path(tempfile.mkdtemp(prefix="rag-opensearch-"))
    try:
        # Quick JIT tiers: the tests measure correctness, not speed (two nodes start in ~13 s, not ~22 s).
        try:
            cluster = start_cluster(base, nodes, jvm_options=["-XX:TieredStopAtLevel=1"], heap="384m")
        except ClusterError as exc:
            skip_or_fail(f"OpenSearch did not start: {exc}")
            raise
        yield cluster
    finally:
        stop_cluster(base, remove_data=True)
        shutil.rmtree(base, ignore_errors=True)
