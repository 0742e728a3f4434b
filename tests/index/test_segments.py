"""Segments score exactly like a full rebuild, with either engine, after additions and removals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rag.index.engines import build_engine
from rag.index.segments import Postings, SegmentedEngine, SegmentedField

WORDS = [f"w{i}" for i in range(60)]


def _documents(rng: random.Random, n: int) -> list[list[str]]:
    # Zipf-like: a few words in most documents (low idf), many rare ones.
    return [[WORDS[min(int(rng.paretovariate(1.2)) - 1, 59)] for _ in range(rng.randint(3, 40))] for _ in range(n)]


@pytest.mark.parametrize("engine", ["rank-bm25", "bm25s"])
def test_additions_and_removals_score_exactly_as_a_rebuild(engine: str) -> None:
    rng = random.Random(7)
    base, added, more = _documents(rng, 300), _documents(rng, 7), _documents(rng, 3)
    field = SegmentedField([Postings.build(base)], np.ones(len(base), dtype=bool), 1.2, 0.75)
    field = field.added(added)
    removed = [3, 150, 301]  # two of the base, one just added
    field = field.removed(removed).added(more)
    every = base + added + more
    live = [i for i in range(len(every)) if i not in removed]
    rebuilt = build_engine(engine, [every[i] for i in live], 1.2, 0.75)
    segmented = SegmentedEngine(field)
    for query in (["w0"], ["w1", "w7", "w30"], ["w0", "w0", "w2"], ["w59", "w3"], ["nothing"]):
        expected = rebuilt.scores(query)
        got = segmented.scores(query)
        if expected is None:
            assert got is None or not got.any()
            continue
        assert got is not None
        # The engines score in float32 (bm25s) or sum in another order (rank-bm25): equal to 7 digits.
        assert np.allclose(got[live], expected, rtol=1e-6, atol=1e-9)
        assert not got[removed].any()  # deleted documents score nothing
        top = segmented.top(query, 10)
        assert [live.index(i) for i, _ in top] == [i for i, _ in rebuilt.top(query, 10)]
        for term in query:
            assert segmented.idf(term) == pytest.approx(rebuilt.idf(term), rel=1e-9)


def test_titles_without_length_normalisation_match_too() -> None:
    rng = random.Random(3)
    base, added = _documents(rng, 50), _documents(rng, 5)
    field = SegmentedField([Postings.build(base)], np.ones(len(base), dtype=bool), 1.2, 0.0).added(added)
    rebuilt = build_engine("bm25s", base + added, 1.2, 0.0)
    expected = rebuilt.scores(["w1", "w4"])
    got = field.scores(["w1", "w4"])
    assert expected is not None and got is not None and np.allclose(got, expected)
