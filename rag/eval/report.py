"""The figures of an evaluation (pure functions of its records), its Markdown report and latency chart."""

from __future__ import annotations

import html
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rag.bench.models import nearest_rank
from rag.eval.judge import CRITERIA, JUDGE_PROMPT
from rag.eval.run import EvalRecord

# The stages of the latency breakdown, in the order they happen.
STAGES = ("retrieve", "prompt", "first token", "generation", "escalation")


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    questions: int
    answerable: int
    unanswerable: int
    hit_at_k: float  # answerable: a supporting document among the sources given to the model
    fact_recall: float  # answerable: share of expected facts the answers contain
    all_facts: float  # answerable: share of answers containing every expected fact
    cites: float  # answerable: share of answers citing at least one source
    citation_precision: float  # answerable answers that cite: share citing a supporting document
    correct_refusals: float  # unanswerable: share answered "the documents don't say"
    false_refusals: float  # answerable: share refused
    escalation_rate: float
    reasons: tuple[tuple[str, int], ...]  # kind of reason, count (most common first)
    latency_p50: dict[str, float]  # stage -> ms (STAGES and "total")
    latency_p95: dict[str, float]
    cost_per_answer: float
    judge: dict[str, float]  # criterion -> mean score (empty without --judge)
    judge_errors: int = 0
    answered_by: tuple[tuple[str, int], ...] = ()  # model (or "extractive", "off-topic"), answers


def stage_ms(record: EvalRecord) -> dict[str, float]:
    """The answer's time per stage: the first token the user waited for (the draft's, when there was one),
    generation summed over every model request, escalation the policy's decision."""
    t = record.timings_ms
    first = t.get("draft_first_token", t.get("final_first_token", 0.0))
    generation = sum(v for k, v in t.items() if k.endswith("_generation"))
    return {
        "retrieve": t.get("retrieve", 0.0),
        "prompt": t.get("build_prompt", 0.0),
        "first token": first,
        "generation": generation,
        "escalation": t.get("escalate", 0.0),
        "total": t.get("total", 0.0),
    }


def reason_kind(reason: str) -> str:
    """'draft too short (5 tokens, minimum 12)' -> 'draft too short'."""
    return reason.split(" (")[0].split(":")[0].strip()


def _share(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarise(records: Sequence[EvalRecord]) -> list[ModeSummary]:
    """One summary per mode, in the order the modes ran."""
    out = []
    for mode in dict.fromkeys(r.mode for r in records):
        rows = [r for r in records if r.mode == mode]
        answerable = [r for r in rows if r.question.answerable]
        unanswerable = [r for r in rows if not r.question.answerable]
        with_facts = [r for r in answerable if r.question.facts]
        citing = [r for r in answerable if r.cited]
        stages = [stage_ms(r) for r in rows]
        judged = [r.scores for r in rows if r.scores is not None]
        out.append(ModeSummary(
            mode=mode,
            questions=len(rows),
            answerable=len(answerable),
            unanswerable=len(unanswerable),
            hit_at_k=_share([bool(set(r.retrieved) & set(r.question.sources)) for r in answerable]),
            fact_recall=(sum(r.facts_found for r in with_facts) / sum(len(r.question.facts) for r in with_facts)
                         if with_facts else 0.0),
            all_facts=_share([r.facts_found == len(r.question.facts) for r in with_facts]),
            cites=_share([bool(r.cited) for r in answerable]),
            citation_precision=_share([bool(set(r.cited) & set(r.question.sources)) for r in citing]),
            correct_refusals=_share([r.refused for r in unanswerable]),
            false_refusals=_share([r.refused for r in answerable]),
            escalation_rate=_share([r.escalated for r in rows]),
            reasons=tuple(Counter(reason_kind(x) for r in rows for x in r.reasons).most_common()),
            latency_p50={s: nearest_rank([st[s] for st in stages], 50) for s in (*STAGES, "total")},
            latency_p95={s: nearest_rank([st[s] for st in stages], 95) for s in (*STAGES, "total")},
            cost_per_answer=statistics.fmean(r.cost_usd for r in rows) if rows else 0.0,
            judge={c: statistics.fmean(getattr(s, c) for s in judged) for c in CRITERIA} if judged else {},
            judge_errors=sum(r.judge_error is not None for r in rows),
            answered_by=tuple(Counter(r.model for r in rows).most_common()),
        ))
    return out


def headline(summaries: Sequence[ModeSummary]) -> str | None:
    """Quality kept versus cost saved by auto mode against large-only, when both ran."""
    by_mode = {s.mode: s for s in summaries}
    auto, large = by_mode.get("auto"), by_mode.get("large")
    if auto is None or large is None:
        return None
    def kept(a: float, b: float) -> str:
        return f"{a / b:.0%}" if b > 0 else "n/a"

    def change(a: float, b: float, less: str, more: str) -> str:
        if b <= 0:
            return f"n/a {less}"
        ratio = 1 - a / b
        return f"{ratio:.0%} {less}" if ratio >= 0 else f"{-ratio:.0%} {more}"

    cost = change(auto.cost_per_answer, large.cost_per_answer, "less cost per answer", "more cost per answer")
    time = change(auto.latency_p50["total"], large.latency_p50["total"], "less median time", "more median time")
    return (f"Auto mode kept {kept(auto.fact_recall, large.fact_recall)} of large-only's fact recall "
            f"({auto.fact_recall:.0%} vs {large.fact_recall:.0%}) and "
            f"{kept(auto.correct_refusals, large.correct_refusals)} of its correct refusals "
            f"({auto.correct_refusals:.0%} vs {large.correct_refusals:.0%}), "
            f"at {cost} (${auto.cost_per_answer:.6f} vs ${large.cost_per_answer:.6f}) "
            f"and {time}, escalating {auto.escalation_rate:.0%} of questions.")


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def markdown(summaries: Sequence[ModeSummary], records: Sequence[EvalRecord], set_name: str, k: int,
             chart: str | None, judge_model: str | None) -> str:
    """The whole report: headline, a table per figure group, the latency breakdown, every question."""
    lines = [f"# Evaluation: {set_name}", ""]
    if summaries:
        s0 = summaries[0]
        lines.append(f"{s0.questions} questions ({s0.answerable} answerable, {s0.unanswerable} not answerable "
                     f"from the corpus), modes: {', '.join(s.mode for s in summaries)}. Temperature 0, seed fixed.")
    top = headline(summaries)
    if top:
        lines += ["", f"**{top}**"]
    lines += ["", "## Quality", "",
              f"| mode | hit@{k} | fact recall | all facts | cites | citations on a supporting document | "
              "correct \"the documents don't say\" | false refusals |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        lines.append(f"| {s.mode} | {s.hit_at_k:.0%} | {s.fact_recall:.0%} | {s.all_facts:.0%} | {s.cites:.0%} | "
                     f"{s.citation_precision:.0%} | {s.correct_refusals:.0%} | {s.false_refusals:.0%} |")
    lines += ["", "## Escalation and cost", "",
              "| mode | answered by | escalated | reasons | blended cost per answer |", "|---|---|---:|---|---:|"]
    for s in summaries:
        why = "; ".join(f"{kind} ({n})" for kind, n in s.reasons) or "none"
        who = ", ".join(f"{model} ({n})" for model, n in s.answered_by)
        lines.append(f"| {s.mode} | {who} | {s.escalation_rate:.0%} | {why} | ${s.cost_per_answer:.6f} |")
    if any(model == "extractive" for s in summaries for model, _ in s.answered_by):
        lines += ["", "Answers by `extractive` came from no model (none reachable, or every model failed): "
                  "their figures measure retrieval, not a model."]
    lines += ["", "## Latency per stage (p50 / p95)", "",
              "| mode | " + " | ".join(STAGES) + " | total |", "|---|" + "---:|" * (len(STAGES) + 1)]
    for s in summaries:
        cells = [f"{_ms(s.latency_p50[x])} / {_ms(s.latency_p95[x])}" for x in (*STAGES, "total")]
        lines.append(f"| {s.mode} | " + " | ".join(cells) + " |")
    if chart:
        lines += ["", f"![Latency breakdown per mode (p50)]({chart})"]
    if judge_model:
        lines += ["", f"## Judge: {judge_model}", "", "| mode | " + " | ".join(CRITERIA) + " | not scored |",
                  "|---|" + "---:|" * (len(CRITERIA) + 1)]
        for s in summaries:
            cells = [f"{s.judge[c]:.2f}" if c in s.judge else "n/a" for c in CRITERIA]
            lines.append(f"| {s.mode} | " + " | ".join(cells) + f" | {s.judge_errors} |")
        lines += ["", "The judge's prompt (sources are the passages given to the answering model):", "", "```",
                  JUDGE_PROMPT, "```"]
    lines += ["", "## Every answer", "", "| mode | question | answerable | model | facts | refused | escalated | total |",
              "|---|---|---|---|---:|---|---|---:|"]
    for r in records:
        q = r.question.question.replace("|", "\\|")
        facts = f"{r.facts_found}/{len(r.question.facts)}" if r.question.facts else "-"
        lines.append(f"| {r.mode} | {q} | {'yes' if r.question.answerable else 'no'} | {r.model} | {facts} | "
                     f"{'yes' if r.refused else 'no'} | {'yes' if r.escalated else 'no'} | "
                     f"{_ms(stage_ms(r)['total'])} |")
    return "\n".join(lines) + "\n"


_COLOURS = {"retrieve": "#4e79a7", "prompt": "#59a14f", "first token": "#f28e2b", "generation": "#e15759",
            "escalation": "#b07aa1"}


def latency_svg(summaries: Sequence[ModeSummary]) -> str:
    """A horizontal stacked bar per mode: the p50 of each stage, with a legend and the values in ms."""
    width, left, bar, gap, top = 760, 70, 28, 18, 40
    height = top + len(summaries) * (bar + gap) + 60
    longest = max((sum(s.latency_p50[x] for x in STAGES) for s in summaries), default=0.0) or 1.0
    scale = (width - left - 30) / longest
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="12">', f'<title>Latency breakdown per mode (p50, ms)</title>',
             '<text x="10" y="20" font-size="14">Latency breakdown per mode (p50 per stage, ms)</text>']
    for i, s in enumerate(summaries):
        y = top + i * (bar + gap)
        parts.append(f'<text x="10" y="{y + bar * 0.65:.0f}">{html.escape(s.mode)}</text>')
        x = float(left)
        for stage in STAGES:
            w = s.latency_p50[stage] * scale
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{_COLOURS[stage]}">'
                             f'<title>{stage}: {s.latency_p50[stage]:.1f} ms</title></rect>')
            x += w
        total = sum(s.latency_p50[x_] for x_ in STAGES)
        parts.append(f'<text x="{min(x + 6, width - 60):.1f}" y="{y + bar * 0.65:.0f}">{total:.0f} ms</text>')
    ly = top + len(summaries) * (bar + gap) + 20
    for j, stage in enumerate(STAGES):
        lx = left + j * 135
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{_COLOURS[stage]}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly + 10}">{stage}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
