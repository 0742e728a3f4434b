"""The escalation policy: pure functions from measurable signals to a decision with its reasons.

Every signal here works on every server except the mean token log-probability, which is used only when
the server returned logprobs (Foundry Local never does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.types import SupportSignals


OffTopic = Literal["refuse", "general"]


@dataclass(frozen=True)
class Policy:
    """Thresholds (built from Settings by `rag.options.policy`). Support thresholds are probabilities
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
    if focused or signals.support >= policy.off_topic_support:
        return None
    if signals.top_score <= 0:
        return "no passage of the documents matches the question"
    return (f"the documents do not cover this question ({signals.support:.0%} estimated chance they answer it, "
            f"threshold {policy.off_topic_support:.0%})")


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


_REFUSALS = re.compile(
    r"\b(?:not (?:mentioned |stated |found |covered |included |present |provided )?in the (?:provided )?(?:context|sources?|documents?|passages?)"
    r"|(?:context|sources?|documents?|passages?) (?:do(?:es)? not|don't|doesn't) (?:say|mention|contain|provide|cover|include|specify)"
    r"|insufficient|not enough information|no information (?:about|on)|cannot (?:answer|find|determine)"
    r"|can't (?:answer|find|determine)|unable to (?:answer|find|determine)|i (?:do not|don't) know)\b",
    re.IGNORECASE,
)
# The same in the languages the app is tested in (a draft answers in the question's language). Phrases, not
# single words: "नाही" ("not") alone is in half of all Marathi sentences. Lower-cased for the search below.
_REFUSAL_PHRASES = tuple(p.casefold() for p in (
    # German, Spanish, French
    "nicht erwähnt", "nicht enthalten", "keine informationen", "geben keine auskunft", "quellen sagen nicht",
    "kann ich nicht beantworten", "nicht beantworten", "no se menciona", "no mencionan", "no contienen",
    "no hay información", "no tengo información", "no puedo responder", "las fuentes no dicen",
    "ne mentionnent pas", "ne contiennent pas", "pas d'information", "aucune information", "je ne peux pas répondre",
    "les sources ne disent pas",
    # Hindi
    "उल्लेख नहीं", "जानकारी नहीं", "स्रोतों में नहीं", "स्रोत नहीं बताते", "उत्तर नहीं दे सकता", "उत्तर नहीं दे सकती",
    "पर्याप्त जानकारी नहीं",
    # Marathi
    "उल्लेख नाही", "माहिती नाही", "स्रोतांमध्ये नाही", "स्रोत सांगत नाहीत", "उत्तर देऊ शकत नाही",
    "पुरेशी माहिती नाही", "दिलेले नाही",
    # Kannada
    "ಉಲ್ಲೇಖಿಸಿಲ್ಲ", "ಮಾಹಿತಿ ಇಲ್ಲ", "ಮೂಲಗಳಲ್ಲಿ ಇಲ್ಲ", "ಉತ್ತರಿಸಲು ಸಾಧ್ಯವಿಲ್ಲ", "ಹೇಳುವುದಿಲ್ಲ",
    # Tamil
    "குறிப்பிடப்படவில்லை", "தகவல் இல்லை", "பதிலளிக்க முடியாது", "கூறவில்லை",
    # Chinese, Japanese
    "没有提到", "未提及", "没有相关信息", "无法回答", "来源中没有", "资料中没有", "没有说明",
    "記載されていません", "記載がありません", "情報がありません", "答えられません", "回答できません",
))
_CITATION = re.compile(r"\[(\d{1,2})(?:\s*[,\-–]\s*\d{1,2})*\]")


def refuses(answer: str) -> bool:
    """True when the answer says the sources cannot answer the question (English and the languages of
    _REFUSAL_PHRASES)."""
    if _REFUSALS.search(answer):
        return True
    folded = answer.casefold()
    return any(phrase in folded for phrase in _REFUSAL_PHRASES)


def cited_sources(answer: str, available: int) -> tuple[int, ...]:
    """The source numbers cited as [n] (or [n, m], [n-m]) that exist among 1..available, in order."""
    found: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in re.findall(r"\d{1,2}", match.group(0)):
            n = int(number)
            if 1 <= n <= available and n not in found:
                found.append(n)
    return tuple(found)
