"""`rag eval`: the shipped set, the figures (exact, from known records), and the command end to end against
the fake server with scripted answers whose right figures are known."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from rag.errors import RagError
from rag.eval.judge import Scores, parse_scores
from rag.eval.questions import EvalQuestion, facts_found, load_set, normalise
from rag.eval.report import latency_svg, markdown, summarise
from rag.eval.run import EvalRecord
from tests.conftest import REPO
from rag.fakes.openai_server import FakeOpenAIServer, Reply


def test_the_bundled_set_is_sound() -> None:
    questions = load_set(None)
    unanswerable = [q for q in questions if not q.answerable]
    assert len(questions) >= 60 and len(unanswerable) / len(questions) >= 0.25
    for q in questions:
        if q.answerable:
            assert q.facts, q.question
            text = normalise(" ".join((REPO / "docs_corpus" / s).read_text() for s in q.sources))
            assert all(normalise(f) in text for f in q.facts), q  # every fact is in a supporting document
        else:
            assert not q.sources and not q.facts


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"facts": []}', "line 2: 'question'"),
        ('{"question": "q", "answerable": "yes"}', "line 2: question must be text"),
        ('{"question": "q", "facts": ["x"]}', "line 2: an answerable question needs the documents"),
        ("not json", "line 2: Expecting value"),
    ],
)
def test_a_bad_set_names_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "ok", "sources": ["a.md"]}\n' + line + "\n")
    with pytest.raises(RagError, match=re.escape(message)):
        load_set(path)


def test_facts_ignore_case_backticks_and_spacing() -> None:
    assert facts_found("Run `ollama  pull phi4-mini` on PORT 11434.", ("ollama pull phi4-mini", "11434", "1234 ")) == 2


def _record(mode: str, q: EvalQuestion, *, facts: int = 0, refused: bool = False, escalated: bool = False,
            retrieved: tuple[str, ...] = (), cited: tuple[str, ...] = (), total: float = 100.0, cost: float = 0.0,
            reasons: tuple[str, ...] = (), scores: Scores | None = None) -> EvalRecord:
    timings = {"retrieve": 2.0, "build_prompt": 1.0, "draft_first_token": total / 4, "draft_generation": total / 2,
               "total": total}
    if escalated:
        timings |= {"escalate": 0.5, "final_first_token": 10.0, "final_generation": 20.0}
    return EvalRecord(mode, q, "text", "m", retrieved, cited, facts, refused, escalated, reasons,  # type: ignore[arg-type]
                      MappingProxyType(timings), cost, 10, 5, scores)


def test_summary_figures_are_exact() -> None:
    a = EvalQuestion("a", ("x", "y"), ("a.md",), True)
    b = EvalQuestion("b", ("z",), ("b.md",), True)
    u = EvalQuestion("u", (), (), False)
    records = [
        _record("auto", a, facts=2, retrieved=("a.md", "c.md"), cited=("a.md",), total=100, cost=0.01),
        _record("auto", b, facts=0, retrieved=("c.md",), cited=("c.md",), total=300, cost=0.03, escalated=True,
                reasons=("draft too short (3 tokens, minimum 12)", "draft cites no source")),
        _record("auto", u, refused=True, total=10, cost=0.0),
        _record("large", a, facts=2, retrieved=("a.md",), cited=("a.md",), total=400, cost=0.04),
        _record("large", b, facts=1, retrieved=("b.md",), total=500, cost=0.05, refused=True),
        _record("large", u, refused=False, total=50, cost=0.02),
    ]
    auto, large = summarise(records)
    assert (auto.questions, auto.answerable, auto.unanswerable) == (3, 2, 1)
    assert auto.hit_at_k == 0.5 and large.hit_at_k == 1.0
    assert auto.fact_recall == pytest.approx(2 / 3) and large.fact_recall == 1.0
    assert auto.all_facts == 0.5 and large.all_facts == 1.0
    assert auto.cites == 1.0 and auto.citation_precision == 0.5 and large.cites == 0.5 and large.citation_precision == 1.0
    assert auto.correct_refusals == 1.0 and large.correct_refusals == 0.0 and large.false_refusals == 0.5
    assert auto.escalation_rate == pytest.approx(1 / 3)
    assert dict(auto.reasons) == {"draft too short": 1, "draft cites no source": 1}
    # Nearest rank over [10, 100, 300]: p50 is 100, p95 is 300 (a measured value, never above the max).
    assert auto.latency_p50["total"] == 100 and auto.latency_p95["total"] == 300
    assert auto.latency_p95["generation"] == 150 + 20  # the draft's and the large model's generation
    assert auto.latency_p50["escalation"] == 0 and auto.latency_p95["escalation"] == 0.5
    assert auto.cost_per_answer == pytest.approx(0.04 / 3) and large.cost_per_answer == pytest.approx(0.11 / 3)
    report = markdown([auto, large], records, "test set", 5, "latency.svg", None)
    assert "Auto mode kept 67% of large-only's fact recall (67% vs 100%)" in report
    assert "at 64% less cost per answer" in report and "less median time" in report
    costly = [r if r.mode != "auto" else EvalRecord(**{**r.__dict__, "cost_usd": r.cost_usd * 10}) for r in records]
    assert "at 264% more cost per answer" in markdown(summarise(costly), costly, "t", 5, None, None)
    assert "| auto | 50% | 67% | 50% | 100% | 50% | 100% | 0% |" in report
    assert "![Latency breakdown per mode (p50)](latency.svg)" in report
    svg = latency_svg([auto, large])
    assert svg.startswith("<svg") and ">auto</text>" in svg and ">large</text>" in svg
    assert "generation: 50.0 ms" in svg and ">first token</text>" in svg


def test_judge_scores_are_parsed_strictly() -> None:
    assert parse_scores('Sure. {"coherence": 4, "factuality": 5, "conciseness": 3}') == Scores(4, 5, 3)
    with pytest.raises(RagError, match="no scores"):
        parse_scores('{"coherence": 9, "factuality": 5, "conciseness": 3}')
    with pytest.raises(RagError, match="no scores"):
        parse_scores("I would give it a four.")


SMALL, LARGE, JUDGE = "Phi-4-mini-instruct-generic-cpu", "gpt-oss-20b-cuda-gpu:1", "judge-model"
CORPUS = {
    "ports.md": "# Ollama\n\nOllama listens on port 11434 by default.\n",
    "studio.md": "# LM Studio\n\nLM Studio serves its API on port 1234.\n",
    "models.md": "# Models\n\nThe size of phi-4-mini: 3.8 billion parameters, and a 128K context window.\n",
}
SET = [
    {"question": "Which port does Ollama listen on?", "facts": ["11434"], "sources": ["ports.md"], "answerable": True},
    {"question": "Which port does LM Studio serve its API on?", "facts": ["1234"], "sources": ["studio.md"],
     "answerable": True},
    {"question": "What is the size of phi-4-mini in parameters?", "facts": ["3.8 billion"], "sources": ["models.md"],
     "answerable": True},
    {"question": "How do I bake sourdough bread?", "facts": [], "sources": [], "answerable": False},
]
# The small model: right about Ollama, too short about LM Studio, refuses about phi-4-mini.
DRAFTS = {"Ollama": "Ollama listens on port 11434 by default, as the guide says [1].",
          "LM Studio": "Port 80 [1].",
          "phi-4-mini": "The sources do not say what size it is."}
FINALS = {"Ollama": "Ollama listens on port 11434 [1].",
          "LM Studio": "LM Studio serves its API on port 1234 [1].",
          "phi-4-mini": "phi-4-mini has 3.8 billion parameters [1]."}


def _topic(body: dict[str, Any]) -> str:
    question = str(body["messages"][-1]["content"]).rsplit("Question:", 1)[-1]
    return next(t for t in ("LM Studio", "Ollama", "phi-4-mini") if t in question)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text)
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps(row) for row in SET) + "\n")
    replies = {SMALL: lambda body: Reply(content=[DRAFTS[_topic(body)]]),
               LARGE: lambda body: Reply(content=[FINALS[_topic(body)]]),
               JUDGE: lambda body: Reply(content=['{"coherence": 4, "factuality": 5, "conciseness": 3}'])}
    env = {"RAG_CORPUS_DIR": str(corpus), "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_SMALL_PRICE_IN": "0",
           "RAG_SMALL_PRICE_OUT": "1000000", "RAG_LARGE_PRICE_IN": "0", "RAG_LARGE_PRICE_OUT": "2000000"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with FakeOpenAIServer([SMALL, LARGE, JUDGE], replies) as server:
        monkeypatch.setenv("RAG_BASE_URL", server.url)
        yield server


def test_rag_eval_end_to_end_gives_the_known_figures(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["eval", "--set", str(tmp_path / "set.jsonl"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    by_mode = {s["mode"]: s for s in json.loads(result.stdout)}
    assert list(by_mode) == ["auto", "small", "large"]
    small, auto, large = by_mode["small"], by_mode["auto"], by_mode["large"]
    assert small["hit_at_k"] == auto["hit_at_k"] == large["hit_at_k"] == 1.0
    assert small["fact_recall"] == pytest.approx(1 / 3) and auto["fact_recall"] == large["fact_recall"] == 1.0
    assert small["false_refusals"] == pytest.approx(1 / 3) and auto["false_refusals"] == 0.0
    # The everyday question is refused as off topic in every mode, with no model request.
    assert small["correct_refusals"] == auto["correct_refusals"] == large["correct_refusals"] == 1.0
    assert auto["escalation_rate"] == 0.5 and small["escalation_rate"] == 0.0
    assert {kind for kind, _ in auto["reasons"]} >= {"draft too short", "draft says the sources are insufficient"}
    assert auto["citation_precision"] == large["citation_precision"] == 1.0
    # Cost: $1 per small-model word, $2 per large-model word (prompt tokens free); the fake server counts words.
    words = {k: len(v.split()) for k, v in {**{f"d{k}": v for k, v in DRAFTS.items()},
                                             **{f"f{k}": v for k, v in FINALS.items()}}.items()}
    small_cost = words["dOllama"] + words["dLM Studio"] + words["dphi-4-mini"]
    auto_cost = words["dOllama"] + (words["dLM Studio"] + 2 * words["fLM Studio"]) + (
        words["dphi-4-mini"] + 2 * words["fphi-4-mini"])
    large_cost = 2 * (words["fOllama"] + words["fLM Studio"] + words["fphi-4-mini"])
    assert small["cost_per_answer"] == pytest.approx(small_cost / 4)
    assert auto["cost_per_answer"] == pytest.approx(auto_cost / 4)
    assert large["cost_per_answer"] == pytest.approx(large_cost / 4)
    assert all(r["temperature"] == 0 and r["seed"] == 7 for r in fake.requests)
    assert len(fake.requests) == 3 + 5 + 3  # small, auto (3 drafts + 2 escalations), large; none off topic

    report = (out / "report.md").read_text()
    assert "Auto mode kept 100% of large-only's fact recall (100% vs 100%)" in report
    assert auto_cost > large_cost  # the drafts cost more here than escalation saves
    assert f"at {auto_cost / large_cost - 1:.0%} more cost per answer" in report
    assert "| small | 100% | 33% | 33% |" in report and "## Latency per stage (p50 / p95)" in report
    assert "| auto | gpt-oss-20b (2), phi-4-mini (1), off-topic (1) | 50% |" in report
    assert "| auto | How do I bake sourdough bread? | no | off-topic | - | yes | no |" in report
    svg = (out / "latency.svg").read_text()
    assert svg.count("<rect") >= 3 * 3 and all(f">{m}</text>" in svg for m in ("auto", "small", "large"))


def test_rag_eval_with_a_judge_reports_scores_and_its_prompt(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["eval", "--set", str(tmp_path / "set.jsonl"), "--out", str(out),
                                      "--modes", "large", "--judge", JUDGE, "--json"])
    assert result.exit_code == 0, result.output
    (large,) = json.loads(result.stdout)
    assert large["judge"] == {"coherence": 4.0, "factuality": 5.0, "conciseness": 3.0} and large["judge_errors"] == 0
    judged = [r for r in fake.requests if r["model"] == JUDGE]
    assert len(judged) == 4 and "Score the answer from 1 (poor) to 5" in judged[0]["messages"][0]["content"]
    report = (out / "report.md").read_text()
    assert f"## Judge: {JUDGE}" in report and "| large | 4.00 | 5.00 | 3.00 | 0 |" in report
    assert "Reply with one JSON object and nothing else" in report  # the judge's prompt is in the report


def test_rag_eval_refuses_an_unknown_mode_and_judge(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["eval", "--modes", "auto,huge"])
    assert bad.exit_code == 2 and "choose among auto, small, large" in bad.output
    missing = CliRunner().invoke(cli, ["eval", "--set", str(tmp_path / "set.jsonl"), "--out", str(tmp_path / "r"),
                                       "--judge", "nonexistent-model"])
    assert missing.exit_code == 1 and "judge nonexistent-model: not served" in missing.output
