"""The answering policy: one pure function, `next_step`, decides what runs next for a question, from
what has happened so far this turn (retrieval support, which models are available, how each model run
ended). No I/O: every case is a row of a table in tests/policy.

Its parts, each pure and tested on its own:
- `off_topic`: the documents do not cover the question (refuse, or answer from general knowledge);
- `plan`: which model answers first, as a draft or as the final answer (`decide_before_draft` skips a
  pointless draft when support is too weak);
- `decide`: is the small model's draft good enough, or does the large model answer;
- `after_small`, `after_large_failure`: what follows a model's answer or failure (the fallback chain).

Every signal works on every server except the mean token log-probability, which is used only when the
server returned logprobs (Foundry Local never does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.units import percents
from rag.types import Kind, Mode, Role, SupportSignals


OffTopic = Literal["refuse", "general"]


@dataclass(frozen=True)
class Policy:
    """Thresholds (built from Settings by `rag.answer.options.policy`). Support thresholds are probabilities
    (`SupportSignals.support`: the estimated chance that the documents answer the question)."""

    min_answer_tokens: int = 12
    min_support: float = 0.4
    min_top_score: float = 0.0
    skip_draft_support: float = 0.15
    min_mean_logprob: float = -1.5
    off_topic_support: float = 0.03  # below: the documents do not cover the question
    off_topic: OffTopic = "refuse"  # ... and then: say so, or let a model answer from general knowledge
    min_draft_support: float = 0.5  # share of a draft's content the passages it cites must support


@dataclass(frozen=True)
class DraftSignals:
    """What is measured about a draft answer and the retrieval behind it."""

    retrieval: SupportSignals
    answer_tokens: int
    refuses: bool
    cites_source: bool
    mean_logprob: float | None = None  # None: the server gave no logprobs
    sources: int = 1  # how many sources the prompt held (0: nothing was retrieved)
    chosen_sources: bool = False  # the user picked the documents (attached them): retrieval is not judged
    draft_support: float | None = None  # share of the draft supported by its passages (None: not measured)
    incomplete: str | None = None  # why the draft is not the model's whole answer (Generation.incomplete)


@dataclass(frozen=True)
class Decision:
    """Whether to escalate, and why (each reason is shown to the user)."""

    escalate: bool
    reasons: tuple[str, ...] = ()


def retrieval_weakness(signals: SupportSignals, policy: Policy) -> list[str]:
    """Reasons the retrieval behind an answer is weak (empty when support is fine)."""
    if signals.top_score <= 0:
        return ["no passage matches the question"]
    reasons = []
    if signals.support < policy.min_support:
        reasons.append(
            f"weak retrieval support: {signals.support:.0%} estimated chance the documents answer this "
            f"(threshold {policy.min_support:.0%}; the best passage covers {signals.weighted_coverage:.0%} of the question)"
        )
    if policy.min_top_score > 0 and signals.top_score < policy.min_top_score:
        reasons.append(f"low retrieval score {signals.top_score:.2f} (threshold {policy.min_top_score:.2f})")
    return reasons


def decide_before_draft(signals: SupportSignals, policy: Policy) -> Decision:
    """Skip the draft when support is so weak that a small-model draft would be pointless."""
    if signals.top_score <= 0:
        return Decision(True, ("no passage matches the question: a draft would only refuse",))
    if signals.support < policy.skip_draft_support:
        return Decision(
            True,
            (
                f"retrieval support too weak for a draft: {signals.support:.0%} estimated chance the documents "
                f"answer this (threshold {policy.skip_draft_support:.0%})",
            ),
        )
    return Decision(False)


def off_topic(signals: SupportSignals, policy: Policy, focused: bool) -> str | None:
    """Why the documents do not cover the question at all, or None when they might.

    Not judged when the user chose the documents (attached them): then they are the subject.
    """
    if focused or signals.topical >= policy.off_topic_support:
        return None
    if signals.top_score <= 0:
        return "no passage of the documents matches the question"
    chance, threshold = percents(signals.topical, policy.off_topic_support)
    return f"the documents do not cover this question ({chance} estimated chance it is about them, threshold {threshold})"


def decide(signals: DraftSignals, policy: Policy) -> Decision:
    """Escalate the draft when any signal says it is weak; every reason is kept."""
    reasons: list[str] = []
    if signals.incomplete:
        reasons.append(f"draft incomplete: {signals.incomplete}")
    if signals.answer_tokens < policy.min_answer_tokens:
        reasons.append(f"draft too short ({signals.answer_tokens} tokens, minimum {policy.min_answer_tokens})")
    if signals.refuses:
        reasons.append("draft says the sources are insufficient")
    if not signals.cites_source and signals.sources > 0:
        reasons.append("draft cites no source")
    if not signals.chosen_sources:
        reasons.extend(retrieval_weakness(signals.retrieval, policy))
    if (signals.draft_support is not None and not signals.refuses
            and signals.draft_support < policy.min_draft_support):
        reasons.append(f"draft poorly supported: only {signals.draft_support:.0%} of its content is found in the "
                       f"passages it cites (threshold {policy.min_draft_support:.0%})")
    if signals.mean_logprob is not None and signals.mean_logprob < policy.min_mean_logprob:
        reasons.append(f"low confidence (mean token logprob {signals.mean_logprob:.2f}, threshold {policy.min_mean_logprob:.2f})")
    return Decision(bool(reasons), tuple(reasons))


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


# --- the one front door -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """How one model request of this turn ended."""

    kind: Kind
    role: Role
    failure: str | None = None  # the short reason it failed; None: it answered
    message: str = ""  # the whole failure message (for an extract's note)
    draft: DraftSignals | None = None  # what was measured of the small model's draft


@dataclass(frozen=True)
class Progress:
    """What the policy knows of one question so far. `available` is None until the models are looked up
    (an off-topic question is refused without asking for them)."""

    mode: Mode
    focused: bool  # the user chose the documents (attached them): retrieval strength is not judged
    retrieval: SupportSignals
    available: tuple[bool, bool] | None = None  # (small, large)
    small: str = "the small model"  # names for the notes
    large: str = "the large model"
    ran: tuple[Ran, ...] = ()


@dataclass(frozen=True)
class Announcement:
    """An escalation verdict to show: escalate or not, why, whether it applies (auto mode), and whether
    the draft was skipped before it ran."""

    escalate: bool
    reasons: tuple[str, ...]
    applied: bool = True
    before_draft: bool = False


StepAction = Literal["look up models", "off topic", "run", "accept", "extract"]


@dataclass(frozen=True)
class Step:
    """What the pipeline does next.

    - "look up models": find which models are available, then ask again;
    - "off topic": the documents do not cover the question (`why`); `kind` answers from general knowledge,
      None: refuse;
    - "run": run model `kind` in `role`;
    - "accept": the answer of `kind` (its last run) is the final answer;
    - "extract": no model answered; quote the documents (`why`).
    `announce` is shown before acting; `note` goes under the final answer.
    """

    action: StepAction
    kind: Kind | None = None
    role: Role = "final"
    announce: Announcement | None = None
    note: str | None = None
    why: str = ""


def next_step(turn: Progress, policy: Policy) -> Step:
    """What runs next for this question: the whole answering policy behind one pure function."""
    if not turn.ran:
        uncovered = off_topic(turn.retrieval, policy, turn.focused)
        if uncovered is not None and policy.off_topic == "refuse":
            return Step("off topic", why=uncovered)
        if turn.available is None:
            return Step("look up models")
        has_small, has_large = turn.available
        if uncovered is not None:
            return Step("off topic", general_knowledge_model(turn.mode, has_small, has_large), why=uncovered)
        route = plan(turn.mode, has_small, has_large, turn.focused, turn.retrieval, policy)
        if route.first is None:
            return Step("extract", why=route.why)
        early = Announcement(True, route.escalated_early, True, route.before_draft) if route.escalated_early else None
        return Step("run", route.first, route.role, early)

    has_small, has_large = turn.available or (False, False)
    first, last = turn.ran[0], turn.ran[-1]
    failures = "; ".join(r.message or r.failure or "" for r in turn.ran if r.failure) or "no model answered"
    if len(turn.ran) == 1 and last.kind == "small":
        verdict = decide(last.draft, policy) if last.failure is None and last.draft is not None else None
        after = after_small(turn.mode, has_large, verdict, last.failure, turn.small)
        shown = Announcement(after.escalate, after.reasons, after.applied) if after.announce else None
        if after.run_large:
            return Step("run", "large", "final", shown)
        if last.failure is not None:
            return Step("extract", why=failures)
        return Step("accept", "small", announce=shown, note=after.note)
    if last.kind == "large":
        if last.failure is None:
            return Step("accept", "large")
        draft = next((r for r in turn.ran if r.kind == "small" and r.failure is None), None)
        skipped = first.kind == "large" and plan(turn.mode, has_small, has_large, turn.focused, turn.retrieval,
                                                   policy).before_draft
        fallback = after_large_failure(draft is not None, skipped, has_small)
        if fallback == "draft":
            return Step("accept", "small", note=f"Not improved: {turn.large} failed ({last.failure}); "
                                                f"this is {turn.small}'s draft.")
        if fallback == "small":
            return Step("run", "small", "final")
        return Step("extract", why=failures)
    # the small model answered after the large one failed
    if last.failure is None:
        failed = next(r for r in turn.ran if r.kind == "large")
        return Step("accept", "small", note=f"{turn.large} failed ({failed.failure}); answered by {turn.small} instead.")
    return Step("extract", why=failures)
