import math
import random

import pytest
from rank_bm25 import BM25Okapi

from rag.index.engines import ENGINES, build_engine

K1, B = 1.2, 0.75
# Three analysed documents; N = 3, average length = 2.
DOCS = [["a", "b"], ["a", "a", "c"], ["c"]]


def _by_hand(tf: int, dl: int, df: int, n: int = 3, avgdl: float = 2.0) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))


@pytest.mark.parametrize("engine", ENGINES)
def test_scores_match_the_formula_computed_by_hand(engine: str) -> None:
    index = build_engine(engine, DOCS, K1, B)
    # "a": df 2 -> idf ln(1.6) = 0.4700; doc 1 (tf 2, dl 3) beats doc 0 (tf 1, dl 2); doc 2 has no "a".
    hits = index.top(["a"], 10)
    assert [i for i, _ in hits] == [1, 0]
    assert hits[0][1] == pytest.approx(0.566580, abs=1e-5) == pytest.approx(_by_hand(2, 3, 2), abs=1e-5)
    assert hits[1][1] == pytest.approx(0.470004, abs=1e-5) == pytest.approx(_by_hand(1, 2, 2), abs=1e-5)
    # "c": the shorter document wins at equal tf.
    hits = index.top(["c"], 10)
    assert [i for i, _ in hits] == [2, 1]
    assert hits[0][1] == pytest.approx(0.590862, abs=1e-5)
    # Two terms add up.
    (best, score), *_ = index.top(["a", "b"], 10)
    assert best == 0 and score == pytest.approx(_by_hand(1, 2, 2) + _by_hand(1, 2, 1), abs=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_terms_and_empty_corpora_return_nothing(engine: str) -> None:
    assert build_engine(engine, DOCS, K1, B).top(["zzz"], 5) == []
    assert build_engine(engine, [], K1, B).top(["a"], 5) == []
    assert build_engine(engine, [[], []], K1, B).top(["a"], 5) == []


def test_engines_rank_and_score_identically_on_a_random_corpus() -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(300)]
    weights = [1 / (i + 1) for i in range(300)]  # Zipf-like, so some terms are in most documents
    docs = [rng.choices(vocabulary, weights, k=rng.randint(5, 120)) for _ in range(800)]
    rank_bm25 = build_engine("rank-bm25", docs, K1, B)
    bm25s = build_engine("bm25s", docs, K1, B)
    for _ in range(60):
        query = list(dict.fromkeys(rng.choices(vocabulary, weights, k=rng.randint(1, 6))))
        a, b = rank_bm25.top(query, 20), bm25s.top(query, 20)
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-4)
        assert_same_ranking(a, b)


def _tie_groups(ranking: list[tuple[int, float]]) -> list[set[int]]:
    groups: list[set[int]] = []
    previous: float | None = None
    for doc, score in ranking:
        if previous is None or not math.isclose(score, previous, rel_tol=1e-5):
            groups.append(set())
        groups[-1].add(doc)
        previous = score
    return groups


def assert_same_ranking(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> None:
    """Same documents in the same order; only documents whose scores tie (float32 vs float64: equal to 5
    digits) may swap, and a tie cut by k may bring in different members of the tie."""
    groups_a, groups_b = _tie_groups(a), _tie_groups(b)
    assert len(groups_a) == len(groups_b)
    assert groups_a[:-1] == groups_b[:-1]
    assert len(groups_a[-1]) == len(groups_b[-1])


def test_the_ranking_check_catches_a_swap() -> None:
    assert_same_ranking([(1, 3.0), (2, 2.0), (3, 2.0)], [(1, 3.0), (3, 2.0), (2, 2.0)])  # a tie may swap
    with pytest.raises(AssertionError):
        assert_same_ranking([(1, 3.0), (2, 2.0)], [(2, 3.0), (1, 2.0)])  # distinct scores may not


def test_lucene_idf_differs_from_rank_bm25_default_on_common_terms() -> None:
    # Why we override rank-bm25's idf: its epsilon floor gives a term in most documents a weight
    # unrelated to its frequency; Lucene's idf stays positive and monotone.
    docs = [["x", "y"], ["x"], ["x", "z"]]
    stock = BM25Okapi(docs, k1=K1, b=B)
    ours = build_engine("rank-bm25", docs, K1, B)
    assert stock.idf["x"] != pytest.approx(math.log(1 + 0.5 / 3.5))
    assert ours.top(["x"], 3)[0][1] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_idf_is_lucene_idf_and_maximal_for_absent_terms(engine: str) -> None:
    index = build_engine(engine, DOCS, K1, B)
    assert index.idf("a") == pytest.approx(math.log(1.6))
    assert index.idf("b") == pytest.approx(math.log(1 + 2.5 / 1.5))
    assert index.idf("never-seen") == pytest.approx(math.log(1 + 3.5 / 0.5))
    assert index.idf("never-seen") > index.idf("b") > index.idf("a")
