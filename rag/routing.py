"""Which model answers: pure functions from the mode, the models available and the signals to what runs.

The pipeline asks three questions in order, each answered here without I/O and tested from a table:
1. `plan`: before any model runs, which model answers first, as a draft or as the final answer?
2. `after_small`: once the small model has answered (or failed), does the large model answer?
3. `after_large_failure`: the large model failed; does a draft stand, does the small model step in, or do
   the documents answer as extracts?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.escalation import Decision, Policy, decide_before_draft
from rag.types import Kind, Mode, Role, SupportSignals


@dataclass(frozen=True)
class Plan:
    """What runs first. `first` None: no model can answer, so the answer is an extract (`why`)."""

    first: Kind | None
    role: Role = "final"  # "draft": the small model's answer may still be replaced in auto mode
    escalated_early: tuple[str, ...] = ()  # auto mode went straight to the large model, for these reasons
    before_draft: bool = False  # ... because retrieval was too weak for a draft (else: no small model)
    why: str = ""


def plan(mode: Mode, has_small: bool, has_large: bool, focused: bool, signals: SupportSignals, policy: Policy) -> Plan:
    """The first model to run for one question.

    `focused`: the user chose the documents (attached them), so retrieval strength is not judged.
    """
    if mode == "small":
        return Plan("small") if has_small else Plan(None, why="the small model is not available")
    if mode == "large":
        return Plan("large") if has_large else Plan(None, why="the large model is not available")
    if not has_small and not has_large:
        return Plan(None, why="no model server answered")
    if not has_small:
        return Plan("large", escalated_early=("the small model is not available",))
    if has_large and not focused:
        early = decide_before_draft(signals, policy)
        if early.escalate:
            return Plan("large", escalated_early=early.reasons, before_draft=True)
    return Plan("small", role="draft")


def general_knowledge_model(mode: Mode, has_small: bool, has_large: bool) -> Kind | None:
    """Who answers an off-topic question from general knowledge (RAG_OFF_TOPIC=general): the mode's model;
    in auto mode the large one (no draft: there is nothing in the documents to check it against)."""
    if mode == "small":
        return "small" if has_small else None
    if mode == "large":
        return "large" if has_large else None
    return "large" if has_large else "small" if has_small else None


@dataclass(frozen=True)
class AfterSmall:
    """What follows the small model's answer.

    `announce`: show the policy's verdict (escalate, reasons, applied); `run_large`: the large model answers
    next; `note`: said under the final answer.
    """

    run_large: bool
    announce: bool
    escalate: bool
    applied: bool
    reasons: tuple[str, ...] = ()
    note: str | None = None


def after_small(mode: Mode, has_large: bool, verdict: Decision | None, failure: str | None, small: str) -> AfterSmall:
    """After the small model answered with `verdict` from the policy, or failed with `failure`."""
    if verdict is None:  # the small model failed
        if mode == "auto" and has_large:
            return AfterSmall(True, True, True, True, (f"{small} failed: {failure or 'unknown error'}",))
        return AfterSmall(False, False, False, False)
    if not verdict.escalate:
        return AfterSmall(False, mode == "auto", False, mode == "auto")
    if mode == "auto" and has_large:
        return AfterSmall(True, True, True, True, verdict.reasons)
    note = f"Not improved: the large model is not available ({'; '.join(verdict.reasons)})." if mode == "auto" else None
    return AfterSmall(False, True, True, False, verdict.reasons, note)


Fallback = Literal["draft", "small", "extract"]


def after_large_failure(have_draft: bool, skipped_draft: bool, has_small: bool) -> Fallback:
    """The large model failed: the draft stands, the small model answers instead, or the documents do."""
    if have_draft:
        return "draft"
    if skipped_draft and has_small:
        return "small"
    return "extract"
