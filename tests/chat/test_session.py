import pytest

from rag.policy.decisions import Policy
from rag.answer.options import AnswerOptions, ChatChoices
from rag.chat.session import SessionStats
from rag.types import Answer, Column, Comparison, Generation, ModelFinished

BASE = AnswerOptions(mode="auto", top_k=5, temperature=0.2, policy=Policy())


def apply_chat_settings(base: AnswerOptions, values: dict[str, object]) -> tuple[AnswerOptions, bool]:
    choices = ChatChoices.of(base).updated(values)
    return choices.options(base), choices.side_by_side


def test_settings_values_become_options() -> None:
    options, compare = apply_chat_settings(BASE, {"mode": "large", "temperature": 0.7, "top_k": 8, "min_support": 0.3,
                                                  "min_answer_tokens": 20, "small_max_tokens": 256})
    assert not compare
    assert (options.mode, options.temperature, options.top_k, options.small_max_tokens) == ("large", 0.7, 8, 256)
    assert (options.policy.min_support, options.policy.min_answer_tokens) == (0.3, 20)
    assert BASE.mode == "auto"  # the base is untouched (other sessions keep theirs)


def test_compare_mode_and_bad_values() -> None:
    options, compare = apply_chat_settings(BASE, {"mode": "compare", "temperature": 9, "top_k": "many", "bogus": 1})
    assert compare and options.mode == "auto"
    assert options.temperature == 2 and options.top_k == 5
    options, compare = apply_chat_settings(BASE, {"mode": "turbo"})
    assert not compare and options.mode == "auto"


def _gen(alias: str, ttft: float, last: float, tokens: int = 10) -> Generation:
    return Generation(alias, alias, "http://x/v1", "text [1]", "", 100, tokens, False, ttft, last, 20.0)


def _answer(model: str, mode: str = "auto", escalated: bool = False, reasons: tuple[str, ...] = (), runs=()) -> Answer:
    return Answer("t", model, model, "x", mode, escalated, reasons, (), (), {"retrieve": 10.0, "build_prompt": 1.0, "total": 500.0},
                  100, 10, False, sum(r.cost_usd for r in runs), runs=tuple(runs))


def test_stats_count_escalations_latency_and_blended_cost() -> None:
    stats = SessionStats()
    stats.record_answer(_answer("phi-4-mini", runs=[ModelFinished("draft", _gen("phi-4-mini", 300, 800), 0.001)]))
    stats.record_answer(_answer("gpt-oss-20b", escalated=True, reasons=("draft too short (3 tokens, minimum 12)", "draft cites no source"),
                                runs=[ModelFinished("draft", _gen("phi-4-mini", 200, 400), 0.001),
                                      ModelFinished("final", _gen("gpt-oss-20b", 2000, 9000), 0.004)]))
    stats.record_answer(_answer("phi-4-mini", mode="small", runs=[ModelFinished("final", _gen("phi-4-mini", 100, 300), 0.001)]))
    report = stats.render_markdown()
    assert "**3 answers**" in report
    assert "Escalation in auto mode: **1 of 2** (50%)" in report
    assert "draft too short ×1" in report and "draft cites no source ×1" in report
    assert "| phi\u20114\u2011mini | 3 | 200 ms / " in report
    assert "| gpt\u2011oss\u201120b | 1 | 2.0 s / 2.0 s | 9.0 s / 9.0 s |" in report
    assert "total **$0.007000**" in report and "blended **$0.002333 per answer**" in report
    props = stats.chart_props()
    assert props["auto_answers"] == 2 and props["escalated"] == 1
    assert props["points"][1]["runs"] == [{"model": "phi-4-mini", "ttft": 200, "total": 400},
                                         {"model": "gpt-oss-20b", "ttft": 2000, "total": 9000}]


def test_comparisons_are_recorded() -> None:
    stats = SessionStats()
    comparison = Comparison("q", (Column("phi-4-mini", "p", "a", generation=_gen("phi-4-mini", 100, 200), cost_usd=0.001),
                                  Column("gpt-oss-20b", "g", error="down")), (), {"total": 250.0})
    record = stats.record_comparison(comparison)
    assert record.mode == "compare" and record.cost_usd == pytest.approx(0.001) and len(record.runs) == 1
    assert "compare: 1" in stats.render_markdown()


def test_empty_stats() -> None:
    assert SessionStats().render_markdown() == "No answers yet in this session."


def test_stats_report_refusals_and_extracts() -> None:
    stats = SessionStats()
    stats.record_answer(_answer("phi-4-mini", runs=[ModelFinished("draft", _gen("phi-4-mini", 300, 800), 0.001)]))
    stats.record_answer(_answer("off-topic"))
    stats.record_answer(_answer("off-topic"))
    stats.record_answer(_answer("extractive"))
    report = stats.render_markdown()
    assert "Refused as not covered by the documents: **2 of 4**; answered with an extract (no model answered): 1." in report
    one = SessionStats()
    one.record_answer(_answer("phi-4-mini", runs=[ModelFinished("draft", _gen("phi-4-mini", 300, 800), 0.001)]))
    assert "Refused as not covered by the documents: **0 of 1**." in one.render_markdown()
