from dataclasses import replace

import pytest

from rag.citations import cited_sources
from rag.index.languages import refuses
from rag.policy.decisions import DraftSignals, Policy, decide, decide_before_draft, off_topic
from rag.types import SupportSignals

STRONG = SupportSignals(8.0, 4.0, 4.0, 0.5, 1.0, 0.9, 4, ("a", "b", "c", "d"), support=0.85)
WEAK = replace(STRONG, coverage=0.25, weighted_coverage=0.3, support=0.3)
HOPELESS = replace(STRONG, coverage=0.1, weighted_coverage=0.1, support=0.1)
NOTHING = SupportSignals.empty(3)
GOOD = DraftSignals(STRONG, answer_tokens=40, refuses=False, cites_source=True)
POLICY = Policy()


@pytest.mark.parametrize(
    ("signals", "policy", "escalate", "reason_fragments"),
    [
        (GOOD, POLICY, False, []),
        (replace(GOOD, answer_tokens=5), POLICY, True, ["draft too short (5 tokens, minimum 12)"]),
        (replace(GOOD, answer_tokens=12), POLICY, False, []),
        (replace(GOOD, refuses=True), POLICY, True, ["sources are insufficient"]),
        (replace(GOOD, cites_source=False), POLICY, True, ["cites no source"]),
        (replace(GOOD, cites_source=False, sources=0, retrieval=STRONG), POLICY, False, []),
        (replace(GOOD, retrieval=WEAK), POLICY, True, ["weak retrieval support", "30%"]),
        (replace(GOOD, retrieval=WEAK), replace(POLICY, min_support=0.3), False, []),
        (replace(GOOD, retrieval=NOTHING), POLICY, True, ["no passage matches"]),
        (GOOD, replace(POLICY, min_top_score=10.0), True, ["low retrieval score 8.00"]),
        (replace(GOOD, mean_logprob=-2.0), POLICY, True, ["low confidence", "-2.00"]),
        (replace(GOOD, mean_logprob=-0.2), POLICY, False, []),
        (replace(GOOD, mean_logprob=None), POLICY, False, []),  # no logprobs (Foundry Local): signal absent
        (
            replace(GOOD, answer_tokens=3, refuses=True, cites_source=False),
            POLICY,
            True,
            ["too short", "insufficient", "cites no source"],
        ),
        (replace(GOOD, answer_tokens=3, refuses=True, cites_source=False, retrieval=WEAK, mean_logprob=-3.0), POLICY, True,
         ["too short", "insufficient", "cites no source", "weak retrieval", "low confidence"]),
        (replace(GOOD, draft_support=0.3), POLICY, True, ["draft poorly supported: only 30% of its content (threshold 50%)"[:40]]),
        (replace(GOOD, draft_support=0.5), POLICY, False, []),
        (replace(GOOD, draft_support=None), POLICY, False, []),  # nothing checkable: no verdict from it
        (replace(GOOD, draft_support=0.1, refuses=True), POLICY, True, ["insufficient"]),  # a refusal says enough
        (replace(GOOD, draft_support=0.3), replace(POLICY, min_draft_support=0.2), False, []),
        (replace(GOOD, incomplete="the stream ended before the model finished"), POLICY, True,
         ["draft incomplete: the stream ended before the model finished"]),
        (replace(GOOD, incomplete="the model reached its token limit mid-answer"), POLICY, True, ["token limit"]),
        (replace(GOOD, incomplete=None), POLICY, False, []),
    ],
)
def test_decide(signals: DraftSignals, policy: Policy, escalate: bool, reason_fragments: list[str]) -> None:
    decision = decide(signals, policy)
    assert decision.escalate is escalate
    joined = " | ".join(decision.reasons)
    for fragment in reason_fragments:
        assert fragment in joined
    if not escalate:
        assert decision.reasons == ()
    if len(reason_fragments) >= 3:  # independent signals each give their own reason
        assert len(decision.reasons) == len(reason_fragments)


@pytest.mark.parametrize(
    ("signals", "skip", "fragment"),
    [
        (STRONG, False, None),
        (WEAK, False, None),
        (HOPELESS, True, "too weak for a draft"),
        (NOTHING, True, "no passage matches"),
    ],
)
def test_decide_before_draft(signals: SupportSignals, skip: bool, fragment: str | None) -> None:
    decision = decide_before_draft(signals, POLICY)
    assert decision.escalate is skip
    if fragment:
        assert fragment in decision.reasons[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is not in the context.", True),
        ("This is not mentioned in the provided sources.", True),
        ("The sources do not say which port LM Studio uses.", True),
        ("The information is insufficient to answer.", True),
        ("I cannot answer this from the documents.", True),
        ("I don't know.", True),
        ("Ollama uses port 11434 [1].", False),
        ("The context window is 128K tokens [2].", False),
        # The languages the app is tested in: a draft answers in the question's language.
        ("दिलेल्या स्रोतांमध्ये याचा उल्लेख नाही.", True),
        ("Foundry Local चा डिफॉल्ट पोर्ट 5273 आहे [1].", False),
        ("स्रोतों में इसका उल्लेख नहीं है।", True),
        ("ಮೂಲಗಳಲ್ಲಿ ಈ ಬಗ್ಗೆ ಮಾಹಿತಿ ಇಲ್ಲ.", True),
        ("ಡೀಫಾಲ್ಟ್ ಪೋರ್ಟ್ 5273 [1].", False),
        ("ஆதாரங்களில் இது குறிப்பிடப்படவில்லை.", True),
        ("资料中没有提到这个问题。", True),
        ("默认端口是 5273 [1]。", False),
        ("資料には記載されていません。", True),
        ("Die Quellen enthalten dazu keine Informationen.", True),
        ("Der Standardport ist 5273 [1].", False),
        ("Las fuentes no dicen nada sobre eso.", True),
        # Describing refusals is not refusing (a first-contact walk: the app's own starter question "How does
        # escalation work?" escalated as a refusal); "insufficient" alone is not one; a refusal that cites is
        ("A draft that says the sources are insufficient goes to gpt-oss-20b.", False),
        ("It escalates when the documents do not cover the question.", False),
        ("Questions the documents do not cover are refused without running a model.", False),
        ("Short drafts and drafts saying the sources do not mention the answer escalate [2].", False),
        ("Ollama fails with insufficient memory on 8 GB machines.", False),
        ("Unfortunately, the documents do not cover this.", True),
        ("Sorry, but the sources do not mention the price.", True),
        ("Ollama uses port 11434 [1]. The sources do not say which port LM Studio uses.", True),
        ("The provided sources do not mention the warranty period [1].", True),
    ],
)
def test_refusal_detection(text: str, expected: bool) -> None:
    assert refuses(text) is expected


def test_citations_are_parsed_and_bounded_by_the_sources() -> None:
    assert cited_sources("Port 11434 [1]; see also [3, 2] and [2-4] and [9].", available=4) == (1, 3, 2, 4)
    assert cited_sources("No citation here, only a list [a].", available=3) == ()


@pytest.mark.parametrize(
    ("signals", "focused", "fragment"),
    [
        (STRONG, False, None),
        (HOPELESS, False, None),  # weak but above the off-topic threshold: the large model answers
        (replace(STRONG, support=0.02), False, "do not cover this question (2% estimated chance"),
        (replace(STRONG, support=0.02), True, None),  # the user attached the documents: they are the subject
        (NOTHING, False, "no passage"),
        (replace(STRONG, support=0.2), False, None),
    ],
)
def test_off_topic(signals: SupportSignals, focused: bool, fragment: str | None) -> None:
    why = off_topic(signals, POLICY, focused)
    assert (why is None) is (fragment is None)
    if fragment:
        assert why is not None and fragment in why
    assert off_topic(replace(STRONG, support=0.2), replace(POLICY, off_topic_support=0.25), False) is not None
