import math

import pytest

from rag.metrics import ndcg_at_k, percentile, recall_at_k


def test_ndcg_by_hand() -> None:
    relevance = {"d1": 1, "d2": 2}
    # Ranked d2 (gain 2, position 1) then x, then d1 (gain 1, position 3).
    dcg = 2 / math.log2(2) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["d2", "x", "d1"], relevance, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["d2", "d1"], relevance, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevance, 10) == 0.0
    assert ndcg_at_k(["x", "d2"], relevance, 1) == 0.0  # cut-off respected


def test_recall_at_k() -> None:
    relevance = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "x"], relevance, 100) == 0.5
    assert recall_at_k(["x", "a", "b"], relevance, 2) == 0.5
    assert recall_at_k(["x"], {}, 100) == 0.0


def test_percentile_interpolates_and_never_exceeds_the_maximum() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5, 1, 9], 95) <= 9
    assert percentile([7], 95) == 7
    assert percentile([], 50) == 0.0
