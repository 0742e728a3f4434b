"""The whole answering policy as one table: what runs next, from what has happened so far this turn."""

from dataclasses import replace

import pytest

from rag.policy.decisions import Announcement, DraftSignals, Policy, Progress, Ran, Step, next_step
from tests.fakes.pipeline import HOPELESS, STRONG

POLICY = Policy()
GENERAL = replace(POLICY, off_topic="general")
NOTHING = replace(HOPELESS, support=0.0, top_score=0.0)
GOOD = DraftSignals(STRONG, answer_tokens=40, refuses=False, cites_source=True)
SHORT = replace(GOOD, answer_tokens=3)
BOTH = (True, True)
START = Progress("auto", False, STRONG, BOTH, "phi-4-mini", "gpt-oss-20b")
DRAFTED = replace(START, ran=(Ran("small", "draft", draft=GOOD),))
WEAK_DRAFT = replace(START, ran=(Ran("small", "draft", draft=SHORT),))
SKIPPED = replace(START, retrieval=HOPELESS)
TOO_SHORT = ("draft too short (3 tokens, minimum 12)",)
SKIP = ("retrieval support too weak for a draft: 10% estimated chance the documents answer this (threshold 15%)",)


@pytest.mark.parametrize(("turn", "policy", "expected"), [
    # before any model: off topic (refused without looking up the models), look up, plan
    (replace(START, retrieval=NOTHING, available=None), POLICY,
     Step("off topic", why="no passage of the documents matches the question")),
    (replace(START, retrieval=NOTHING, available=None), GENERAL, Step("look up models")),
    (replace(START, retrieval=NOTHING), GENERAL,
     Step("off topic", "large", why="no passage of the documents matches the question")),
    (replace(START, retrieval=NOTHING, mode="small"), GENERAL,
     Step("off topic", "small", why="no passage of the documents matches the question")),
    (replace(START, retrieval=NOTHING, available=(False, False)), GENERAL,
     Step("off topic", None, why="no passage of the documents matches the question")),
    (replace(START, available=None), POLICY, Step("look up models")),
    (START, POLICY, Step("run", "small", "draft")),
    (replace(START, focused=True, retrieval=NOTHING), POLICY, Step("run", "small", "draft")),  # attached files
    (SKIPPED, POLICY, Step("run", "large", "final", Announcement(True, SKIP, True, True))),
    (replace(START, available=(False, True)), POLICY,
     Step("run", "large", "final", Announcement(True, ("the small model is not available",)))),
    (replace(START, available=(False, False)), POLICY, Step("extract", why="no model server answered")),
    (replace(START, mode="large", available=(True, False)), POLICY,
     Step("extract", why="the large model is not available")),
    (replace(START, mode="small"), POLICY, Step("run", "small", "final")),
    # after the draft
    (DRAFTED, POLICY, Step("accept", "small", announce=Announcement(False, (), True))),
    (WEAK_DRAFT, POLICY, Step("run", "large", "final", Announcement(True, TOO_SHORT, True))),
    (replace(WEAK_DRAFT, available=(True, False)), POLICY,
     Step("accept", "small", announce=Announcement(True, TOO_SHORT, False),
          note="Not improved: the large model is not available (draft too short (3 tokens, minimum 12)).")),
    (replace(WEAK_DRAFT, mode="small", ran=(Ran("small", "final", draft=SHORT),)), POLICY,
     Step("accept", "small", announce=Announcement(True, TOO_SHORT, False))),  # shown, not applied
    (replace(START, mode="small", ran=(Ran("small", "final", draft=GOOD),)), POLICY, Step("accept", "small")),
    (replace(START, ran=(Ran("small", "draft", "HTTP 500", "phi-4-mini: HTTP 500"),)), POLICY,
     Step("run", "large", "final", Announcement(True, ("phi-4-mini failed: HTTP 500",), True))),
    (replace(START, mode="small", ran=(Ran("small", "final", "HTTP 500", "phi-4-mini: HTTP 500"),)), POLICY,
     Step("extract", why="phi-4-mini: HTTP 500")),
    # after the large model: it stands, or the fallback chain
    (replace(WEAK_DRAFT, ran=(*WEAK_DRAFT.ran, Ran("large", "final"))), POLICY, Step("accept", "large")),
    (replace(WEAK_DRAFT, ran=(*WEAK_DRAFT.ran, Ran("large", "final", "timeout", "gpt-oss-20b: timeout"))), POLICY,
     Step("accept", "small", note="Not improved: gpt-oss-20b failed (timeout); this is phi-4-mini's draft.")),
    (replace(SKIPPED, ran=(Ran("large", "final", "HTTP 500", "gpt-oss-20b: HTTP 500"),)), POLICY,
     Step("run", "small", "final")),  # the draft was skipped: the small model answers after all
    (replace(SKIPPED, ran=(Ran("large", "final", "HTTP 500", "x"), Ran("small", "final"))), POLICY,
     Step("accept", "small", note="gpt-oss-20b failed (HTTP 500); answered by phi-4-mini instead.")),
    (replace(SKIPPED, ran=(Ran("large", "final", "HTTP 500", "big: 500"), Ran("small", "final", "down", "small: down"))),
     POLICY, Step("extract", why="big: 500; small: down")),
    (replace(START, ran=(Ran("small", "draft", "down", "small: down"), Ran("large", "final", "500", "big: 500"))),
     POLICY, Step("extract", why="small: down; big: 500")),
    (replace(START, mode="large", ran=(Ran("large", "final", "500", "big: 500"),)), POLICY,
     Step("extract", why="big: 500")),
])
def test_next_step(turn: Progress, policy: Policy, expected: Step) -> None:
    assert next_step(turn, policy) == expected


def test_an_off_topic_question_is_refused_before_any_model_is_looked_up() -> None:
    assert next_step(replace(START, retrieval=NOTHING, available=None), POLICY).action == "off topic"
