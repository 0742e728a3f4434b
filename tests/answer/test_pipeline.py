"""The pipeline on in-process fakes, with a fake clock: exact timings, every route through it."""

from dataclasses import replace

import pytest

from rag.index.analysis import Analyzer
from rag.errors import ModelTimeout, ModelUnavailable, NoFinalAnswer
from rag.answer.extractive import LABEL
from rag.answer.options import AnswerOptions, Price, Prices
from rag.answer.pipeline import Pipeline
from rag.answer.prompt import Turn
from rag.llm.tokens import get_tokenizer
from rag.types import (
    Answer,
    EscalationDecided,
    ModelFailed,
    ModelFinished,
    ModelStarted,
    ReasoningDelta,
    Retrieved,
    StageFinished,
    TokenDelta,
)
from tests.fakes.pipeline import HOPELESS, FakeClock, FakeModel, FakeProvider, FakeSearcher, passages

PRICES = Prices(Price(0.07, 0.14), Price(0.10, 0.50))


def _setup(small: dict | None = None, large: dict | None = None, **searcher: object):
    clock = FakeClock()
    s = FakeModel("phi-4-mini", clock, **(small or {})) if small is not None else None
    l_ = FakeModel("gpt-oss-20b", clock, **(large or {})) if large is not None else None
    provider = FakeProvider(s, l_)
    search = FakeSearcher(clock, **searcher)  # type: ignore[arg-type]
    return Pipeline(search, provider, Analyzer(), get_tokenizer(), clock=clock), provider, search


async def _run(pipeline: Pipeline, question: str = "Which port does Ollama use?", history=(), **opts):
    events = [e async for e in pipeline.run(question, history, AnswerOptions(prices=PRICES, **opts))]
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert sum(isinstance(e, Answer) for e in events) == 1
    return events, answer


async def test_good_draft_stands_with_exact_timings() -> None:
    pipeline, provider, _ = _setup(small={}, large={})
    events, answer = await _run(pipeline)
    kinds = [type(e).__name__ for e in events]
    assert kinds[:3] == ["Retrieved", "StageFinished", "ModelStarted"]
    assert kinds[-3:] == ["ModelFinished", "EscalationDecided", "Answer"]
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.escalate is False and decision.reasons == ()
    assert answer.model == "phi-4-mini" and not answer.escalated and answer.draft is None
    assert answer.text == "".join(e.text for e in events if isinstance(e, TokenDelta))
    words = len(answer.text.split(" "))
    assert answer.timings_ms == {
        "retrieve": 8.0,
        "build_prompt": 0.0,
        "draft_first_token": 300.0,
        "draft_generation": pytest.approx(20.0 * (words - 1)),
        "escalate": 0.0,
        "total": pytest.approx(8.0 + 300.0 + 20.0 * (words - 1)),
    }
    assert answer.cited == (1,) and answer.sources[0].number == 1
    assert answer.cost_usd == pytest.approx((500 * 0.07 + words * 0.14) / 1e6)
    assert provider.large is not None and provider.large.calls == []


async def test_short_draft_escalates_and_the_draft_is_kept() -> None:
    pipeline, provider, _ = _setup(
        small={"text": "11434 [1]."},
        large={"text": "Ollama's OpenAI-compatible API listens on port 11434 by default [1].", "reasoning": "Source 1 says so.", "ttft_ms": 2000},
    )
    events, answer = await _run(pipeline)
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.escalate and decision.applied and not decision.before_draft
    assert any("draft too short" in r for r in decision.reasons)
    assert answer.model == "gpt-oss-20b" and answer.escalated
    assert answer.draft == "11434 [1]."
    assert answer.reasoning == "Source 1 says so."
    assert [e.role for e in events if isinstance(e, ModelStarted)] == ["draft", "final"]
    assert any(isinstance(e, ReasoningDelta) and e.role == "final" for e in events)
    assert answer.timings_ms["final_first_token"] == 2000.0
    finished = [e for e in events if isinstance(e, ModelFinished)]
    assert answer.cost_usd == pytest.approx(sum(e.cost_usd for e in finished))
    assert answer.completion_tokens == sum(e.generation.completion_tokens for e in finished)


async def test_hopeless_retrieval_skips_the_draft() -> None:
    pipeline, provider, _ = _setup(small={}, large={}, signals=HOPELESS)
    events, answer = await _run(pipeline)
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.before_draft and "too weak for a draft" in decision.reasons[0]
    assert provider.small is not None and provider.small.calls == []
    assert answer.model == "gpt-oss-20b" and answer.escalated and answer.draft is None


async def test_large_failure_after_escalation_keeps_the_draft_with_a_note() -> None:
    error = NoFinalAnswer("gpt-oss-20b", "http://fake/v1", "spent its output on reasoning and gave no final answer")
    pipeline, _, _ = _setup(small={"text": "I cannot answer this."}, large={"error": error})
    events, answer = await _run(pipeline)
    assert any(isinstance(e, ModelFailed) and e.role == "final" for e in events)
    assert answer.model == "phi-4-mini" and not answer.escalated
    assert answer.note and answer.note.startswith("Not improved: gpt-oss-20b failed (spent its output on reasoning")


async def test_small_model_down_goes_to_the_large_model() -> None:
    error = ModelUnavailable("phi-4-mini", "http://fake/v1", "cannot connect (ConnectError)")
    pipeline, provider, _ = _setup(small={"error": error}, large={})
    events, answer = await _run(pipeline)
    assert provider.unavailable_reports == ["small"]
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.reasons == ("phi-4-mini failed: cannot connect (ConnectError)",)
    assert answer.model == "gpt-oss-20b"


async def test_no_model_server_answers_extractively() -> None:
    pipeline, _, _ = _setup()
    events, answer = await _run(pipeline)
    assert answer.model == "extractive" and answer.backend == "embedded"
    assert answer.text.startswith(LABEL)
    assert "Ollama listens on port 11434 by default. [1]" in answer.text
    assert answer.cited == (1,)
    assert any(isinstance(e, StageFinished) and e.name == "extract" for e in events)


async def test_every_model_failing_ends_extractively_with_the_reasons() -> None:
    down = ModelUnavailable("phi-4-mini", "http://fake/v1", "cannot connect")
    slow = ModelTimeout("gpt-oss-20b", "http://fake/v1", "no first token within 180 s")
    pipeline, _, _ = _setup(small={"error": down}, large={"error": slow})
    _, answer = await _run(pipeline)
    assert answer.model == "extractive"
    assert answer.note and "cannot connect" in answer.note and "no first token" in answer.note


async def test_skipped_draft_then_large_failure_falls_back_to_the_small_model() -> None:
    slow = ModelTimeout("gpt-oss-20b", "http://fake/v1", "no first token within 180 s")
    pipeline, _, _ = _setup(small={}, large={"error": slow}, signals=HOPELESS)
    _, answer = await _run(pipeline)
    assert answer.model == "phi-4-mini" and not answer.escalated
    assert answer.note and "gpt-oss-20b failed (no first token" in answer.note


async def test_small_mode_never_escalates_but_shows_the_verdict() -> None:
    pipeline, provider, _ = _setup(small={"text": "11434."}, large={})
    events, answer = await _run(pipeline, mode="small")
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.escalate and not decision.applied
    assert answer.model == "phi-4-mini" and answer.mode == "small"
    assert provider.large is not None and provider.large.calls == []
    assert [e.role for e in events if isinstance(e, ModelStarted)] == ["final"]


async def test_large_mode_uses_only_the_large_model() -> None:
    pipeline, provider, _ = _setup(small={}, large={})
    events, answer = await _run(pipeline, mode="large")
    assert answer.model == "gpt-oss-20b" and not answer.escalated
    assert provider.small is not None and provider.small.calls == []
    assert not any(isinstance(e, EscalationDecided) for e in events)


async def test_mid_stream_failure_of_the_draft_reports_partial_text() -> None:
    from rag.errors import StreamInterrupted

    cut = StreamInterrupted("phi-4-mini", "http://fake/v1", "stream cut after 3 chunks", partial="Ollama listens on ")
    pipeline, _, _ = _setup(small={"error": cut, "error_after_tokens": 3}, large={})
    events, answer = await _run(pipeline)
    failed = next(e for e in events if isinstance(e, ModelFailed))
    assert failed.partial_text == "Ollama listens on " and "stream cut" in failed.message
    assert answer.model == "gpt-oss-20b"


async def test_follow_up_questions_retrieve_with_the_previous_question() -> None:
    pipeline, _, search = _setup(small={}, large={})
    history = [Turn("Which port does Ollama use?", "Port 11434 [1].")]
    events, _ = await _run(pipeline, "and how fast is it?", history=history)
    retrieved = next(e for e in events if isinstance(e, Retrieved))
    assert (retrieved.query, retrieved.earlier) == ("and how fast is it?", "Which port does Ollama use?")
    assert (search.queries[-1], search.earlier[-1]) == ("and how fast is it?", "Which port does Ollama use?")
    _, _ = await _run(pipeline, "What is BM25?", history=history)  # short, and new: searched alone
    assert (search.queries[-1], search.earlier[-1]) == ("What is BM25?", "")


async def test_prompt_carries_history_and_numbered_sources() -> None:
    pipeline, provider, _ = _setup(small={}, large={})
    history = [Turn("Which port does Ollama use?", "Port 11434 [1].")]
    await _run(pipeline, "and LM Studio?", history=history)
    assert provider.small is not None
    messages = provider.small.calls[0]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert '<source id="1" document="doc1.md"' in messages[-1]["content"]
    assert messages[-1]["content"].endswith("Question: and LM Studio?")


async def _compare(pipeline: Pipeline):
    from rag.types import Comparison

    events = [e async for e in pipeline.compare("Which port does Ollama use?", (), AnswerOptions(prices=PRICES))]
    assert isinstance(events[-1], Comparison)
    return events, events[-1]


async def test_side_by_side_runs_both_models_on_the_same_sources() -> None:
    pipeline, provider, search = _setup(small={"per_token_ms": 30}, large={"text": "Port 11434 [1].", "reasoning": "think", "ttft_ms": 50})
    events, comparison = await _compare(pipeline)
    assert len(search.queries) == 1  # retrieved once
    assert provider.small and provider.large and provider.small.calls[0] == provider.large.calls[0]  # same prompt
    roles = [e.role for e in events if isinstance(e, TokenDelta)]
    assert set(roles) == {"left", "right"}
    first_left = roles.index("left")
    assert "right" in roles[first_left:] and "left" in roles[roles.index("right"):]  # interleaved, concurrent
    left, right = comparison.columns
    assert (left.alias, right.alias) == ("phi-4-mini", "gpt-oss-20b")
    assert right.text == "Port 11434 [1]." and right.reasoning == "think" and right.cited == (1,)
    assert left.cost_usd > 0 and right.generation is not None
    assert comparison.sources[0].number == 1


async def test_side_by_side_with_one_model_failing_or_absent() -> None:
    down = ModelUnavailable("gpt-oss-20b", "http://fake/v1", "model not loaded on the server (HTTP 400)")
    pipeline, _, _ = _setup(small={}, large={"error": down})
    _, comparison = await _compare(pipeline)
    left, right = comparison.columns
    assert left.error is None and left.text.startswith("Ollama listens")
    assert right.error and "model not loaded" in right.error
    pipeline, _, _ = _setup(small={})
    _, comparison = await _compare(pipeline)
    assert comparison.columns[1].error == "the large model is not available (no server serves it)"


OFF_TOPIC = replace(HOPELESS, support=0.01)


async def test_off_topic_question_is_refused_plainly_by_default() -> None:
    pipeline, provider, _ = _setup(small={}, large={}, signals=OFF_TOPIC)
    events, answer = await _run(pipeline, "How do I bake sourdough bread?")
    stage = next(e for e in events if isinstance(e, StageFinished))
    assert stage.name == "off topic" and "not answered" in stage.detail
    assert not any(isinstance(e, ModelStarted) for e in events)  # no model request at all
    assert answer.model == "off-topic" and not answer.grounded and answer.sources == ()
    assert "do not cover this question" in answer.text and answer.cost_usd == 0.0
    # Issue 26: the user reads a plain answer, no variable to set; the figures and the setting are in the step.
    assert answer.note is None and "RAG_" not in answer.text
    assert "RAG_OFF_TOPIC=general" in stage.detail and "An administrator can set" in stage.detail
    assert set(answer.timings_ms) == {"retrieve", "off_topic", "total"}


async def test_off_topic_with_general_knowledge_lets_the_large_model_answer_labelled() -> None:
    pipeline, provider, _ = _setup(small={}, large={"text": "Mix flour, water and starter, then bake hot."},
                                   signals=OFF_TOPIC)
    policy = replace(AnswerOptions().policy, off_topic="general")
    events, answer = await _run(pipeline, "How do I bake sourdough bread?", policy=policy)
    started = [e for e in events if isinstance(e, ModelStarted)]
    assert [e.alias for e in started] == ["gpt-oss-20b"] and started[0].role == "final"  # no draft
    assert answer.model == "gpt-oss-20b" and not answer.grounded and answer.sources == ()
    assert answer.note is not None and answer.note.startswith("Not from your documents")
    assert not answer.escalated and answer.completion_tokens > 0
    messages = provider.large.calls[0] if provider.large else []
    assert "general knowledge" in messages[0]["content"] and "<source" not in messages[-1]["content"]


async def test_off_topic_general_in_small_mode_uses_the_small_model() -> None:
    pipeline, _, _ = _setup(small={"text": "Knead, proof and bake."}, large={}, signals=OFF_TOPIC)
    policy = replace(AnswerOptions().policy, off_topic="general")
    _, answer = await _run(pipeline, "How do I bake sourdough bread?", policy=policy, mode="small")
    assert answer.model == "phi-4-mini" and not answer.grounded


async def test_attached_documents_are_never_off_topic() -> None:
    pipeline, _, _ = _setup(small={}, large={}, signals=OFF_TOPIC, found=passages("Ollama listens on port 11434."))
    events = [e async for e in pipeline.run("Summarize this", (), AnswerOptions(prices=PRICES),
                                            frozenset({"doc1.md"}))]
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.grounded and answer.model == "phi-4-mini"


async def test_an_unsupported_draft_escalates_with_that_reason() -> None:
    invented = "Ollama needs a Kubernetes cluster with three replicas and OAuth tokens stored in Redis [1]."
    pipeline, _, _ = _setup(small={"text": invented}, large={})
    events, answer = await _run(pipeline)
    decision = next(e for e in events if isinstance(e, EscalationDecided))
    assert decision.escalate and any("draft poorly supported: only 0%" in r for r in decision.reasons)
    assert answer.model == "gpt-oss-20b" and answer.escalated and answer.draft == invented


@pytest.mark.parametrize(("finish", "note"), [
    (None, "The answer is incomplete: phi-4-mini's stream ended before the model finished"),
    ("length", "The answer is incomplete: phi-4-mini reached the 512-token limit (RAG_SMALL_MAX_TOKENS)"),
])
async def test_a_draft_that_ended_early_is_marked_and_escalated(finish: str | None, note: str) -> None:
    pipeline, _, _ = _setup(small={"finish_reason": finish}, large={})
    _, answer = await _run(pipeline, mode="auto")
    assert answer.model == "gpt-oss-20b" and answer.escalated
    assert any(r.startswith("draft incomplete: ") for r in answer.reasons)
    pipeline, _, _ = _setup(small={"finish_reason": finish}, large={})
    _, answer = await _run(pipeline, mode="small")
    assert answer.model == "phi-4-mini" and (answer.note or "").startswith(note)
