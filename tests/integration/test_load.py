"""20 concurrent chat sessions × 5 questions through Chainlit's websocket against the real app."""

import pytest

from rag.bench.load import run_load_bench

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_twenty_sessions_are_all_answered_and_isolated() -> None:
    report = run_load_bench(sessions=20, questions=5)
    assert report.errors == []
    assert report.answered == report.expected == 100
    assert report.isolation_violations == 0  # no event carried another session's marker
    assert report.wrong_mode_answers == 0  # every answer came in its own session's mode
    assert report.follow_ups_with_own_history == 20
    assert report.added_p95_ms > 0
    assert report.history and report.database_locked == 0  # history on (SQLite), as `make run` has it
