"""Which model answers, from a table of cases: pure functions, no models, no I/O."""

import pytest

from rag.policy.decisions import Decision, Policy
from rag.policy.decisions import AfterSmall, Plan, after_large_failure, after_small, plan
from rag.types import Mode
from tests.fakes.pipeline import HOPELESS, STRONG

POLICY = Policy()
WEAK = "retrieval support too weak for a draft: 10% estimated chance the documents answer this (threshold 15%)"


@pytest.mark.parametrize(
    ("mode", "small", "large", "focused", "strong", "expected"),
    [
        ("auto", True, True, False, True, Plan("small", role="draft")),
        ("auto", True, True, False, False, Plan("large", escalated_early=(WEAK,), before_draft=True)),
        ("auto", True, True, True, False, Plan("small", role="draft")),  # attached files: retrieval not judged
        ("auto", True, False, False, False, Plan("small", role="draft")),  # nothing better to go to
        ("auto", False, True, False, True, Plan("large", escalated_early=("the small model is not available",))),
        ("auto", False, False, False, True, Plan(None, why="no model server answered")),
        ("small", True, True, False, False, Plan("small")),  # small mode never skips the draft
        ("small", False, True, False, True, Plan(None, why="the small model is not available")),
        ("large", True, True, False, True, Plan("large")),
        ("large", True, False, False, True, Plan(None, why="the large model is not available")),
    ],
)
def test_plan(mode: Mode, small: bool, large: bool, focused: bool, strong: bool, expected: Plan) -> None:
    assert plan(mode, small, large, focused, STRONG if strong else HOPELESS, POLICY) == expected


ESCALATE = Decision(True, ("draft too short (3 tokens, minimum 12)",))
FINE = Decision(False)


@pytest.mark.parametrize(
    ("mode", "large", "verdict", "failure", "expected"),
    [
        ("auto", True, FINE, None, AfterSmall(False, True, False, True)),
        ("auto", True, ESCALATE, None, AfterSmall(True, True, True, True, ESCALATE.reasons)),
        ("auto", False, ESCALATE, None, AfterSmall(False, True, True, False, ESCALATE.reasons,
                                                  "Not improved: the large model is not available (draft too short (3 tokens, minimum 12)).")),
        ("small", True, ESCALATE, None, AfterSmall(False, True, True, False, ESCALATE.reasons)),  # shown, not applied
        ("small", True, FINE, None, AfterSmall(False, False, False, False)),  # nothing to say
        ("auto", True, None, "HTTP 500", AfterSmall(True, True, True, True, ("phi-4-mini failed: HTTP 500",))),
        ("auto", False, None, "HTTP 500", AfterSmall(False, False, False, False)),
        ("small", True, None, "HTTP 500", AfterSmall(False, False, False, False)),
    ],
)
def test_after_small(mode: Mode, large: bool, verdict: Decision | None, failure: str | None, expected: AfterSmall) -> None:
    assert after_small(mode, large, verdict, failure, "phi-4-mini") == expected


@pytest.mark.parametrize(
    ("have_draft", "skipped", "small", "expected"),
    [
        (True, False, True, "draft"),
        (False, True, True, "small"),  # the draft was skipped: the small model answers after all
        (False, True, False, "extract"),
        (False, False, True, "extract"),  # the draft failed too
    ],
)
def test_after_large_failure(have_draft: bool, skipped: bool, small: bool, expected: str) -> None:
    assert after_large_failure(have_draft, skipped, small) == expected
