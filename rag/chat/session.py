"""Per-chat-session statistics: what /stats and the latency chart show, accumulated answer by answer.

Nothing here is shared between sessions: app.py keeps one `SessionStats` per Chainlit user session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from statistics import fmean
from types import MappingProxyType
from typing import Any

from rag.metrics import percentile
from rag.types import Answer, Comparison, Generation
from rag.chat.progress import rate
from rag.units import count, format_ms

@dataclass(frozen=True)
class RunRecord:
    """One model request of an answer."""

    model: str
    ttft_ms: float
    total_ms: float
    completion_tokens: int
    tokens_per_s: float | None  # None when too few tokens to mean anything (rag.chat.progress.rate)
    cost_usd: float

    @classmethod
    def of(cls, generation: Generation, cost: float) -> RunRecord:
        """From a completed generation."""
        return cls(generation.alias, generation.first_token_ms, generation.last_token_ms,
                   generation.completion_tokens, rate(generation), cost)


@dataclass(frozen=True)
class AnswerRecord:
    """One answer (or comparison) of the session."""

    number: int
    mode: str
    model: str
    escalated: bool
    reasons: tuple[str, ...]
    stages: Mapping[str, float]
    runs: tuple[RunRecord, ...]

    @property
    def cost_usd(self) -> float:
        """All model requests of this answer (draft and escalation both count)."""
        return sum(r.cost_usd for r in self.runs)


class SessionStats:
    """Everything /stats and the latency chart show, accumulated answer by answer."""

    def __init__(self) -> None:
        self.records: list[AnswerRecord] = []

    def record_answer(self, answer: Answer) -> AnswerRecord:
        """Add a finished answer."""
        record = AnswerRecord(
            len(self.records) + 1, answer.mode, answer.model, answer.escalated, answer.reasons,
            MappingProxyType(dict(answer.timings_ms)), tuple(RunRecord.of(r.generation, r.cost_usd) for r in answer.runs),
        )
        self.records.append(record)
        return record

    def record_comparison(self, comparison: Comparison) -> AnswerRecord:
        """Add a finished side-by-side comparison."""
        runs = tuple(RunRecord.of(c.generation, c.cost_usd) for c in comparison.columns if c.generation is not None)
        record = AnswerRecord(len(self.records) + 1, "compare", " vs ".join(c.alias for c in comparison.columns),
                              False, (), MappingProxyType(dict(comparison.timings_ms)), runs)
        self.records.append(record)
        return record

    def to_dict(self) -> list[dict[str, Any]]:
        """A JSON-ready form, stored with the conversation so /stats and the chart survive a resume."""
        return [{**asdict(replace(r, stages={})), "stages": dict(r.stages)} for r in self.records]

    @classmethod
    def from_dict(cls, data: object) -> SessionStats:
        """Stats from `to_dict` output; records that do not parse are left out."""
        stats = cls()
        for item in data if isinstance(data, list) else ():
            try:
                runs = tuple(RunRecord(**run) for run in item["runs"])
                stats.records.append(AnswerRecord(
                    int(item["number"]), str(item["mode"]), str(item["model"]), bool(item["escalated"]),
                    tuple(item["reasons"]), MappingProxyType(dict(item["stages"])), runs))
            except (KeyError, TypeError, ValueError):
                continue
        return stats

    def chart_props(self) -> dict[str, Any]:
        """Props for the LatencyChart element: per answer and model, time to first token and total."""
        auto = [r for r in self.records if r.mode == "auto"]
        return {
            "points": [
                {"n": r.number, "mode": r.mode, "escalated": r.escalated,
                 "runs": [{"model": x.model, "ttft": round(x.ttft_ms), "total": round(x.total_ms)} for x in r.runs]}
                for r in self.records[-30:]  # the chart stays readable; /stats covers the whole session
            ],
            "auto_answers": len(auto),
            "escalated": sum(r.escalated for r in auto),
        }

    def render_markdown(self) -> str:
        """The /stats report."""
        if not self.records:
            return "No answers yet in this session."
        n = len(self.records)
        auto = [r for r in self.records if r.mode == "auto"]
        escalated = [r for r in auto if r.escalated]
        lines = [f"**{count(n, 'answer')}** in this session (" + ", ".join(f"{m}: {c}" for m, c in Counter(r.mode for r in self.records).items()) + ")."]
        if auto:
            lines.append(f"Escalation in auto mode: **{len(escalated)} of {len(auto)}** ({len(escalated) / len(auto):.0%}).")
            reasons = Counter(_reason_kind(reason) for r in escalated for reason in r.reasons)
            if reasons:
                lines.append("Reasons: " + ", ".join(f"{k} ×{v}" for k, v in reasons.most_common()) + ".")
        refused = sum(r.model == "off-topic" for r in self.records)
        extracts = sum(r.model == "extractive" for r in self.records)
        lines.append(f"Refused as not covered by the documents: **{refused} of {n}**"
                     + (f"; answered with an extract (no model answered): {extracts}" if extracts else "") + ".")
        lines += ["", "| stage | mean | p95 |", "|---|---:|---:|"]
        for stage in ("retrieve", "build_prompt", "escalate", "total"):
            values = [r.stages[stage] for r in self.records if stage in r.stages]
            if values:
                lines.append(f"| {stage.replace('_', ' ')} | {format_ms(fmean(values))} | {format_ms(percentile(values, 95))} |")
        runs_by_model: dict[str, list[RunRecord]] = {}
        for record in self.records:
            for run in record.runs:
                runs_by_model.setdefault(run.model, []).append(run)
        if runs_by_model:
            lines += ["", "| model | requests | first token mean / p95 | total mean / p95 | tok/s | tokens | cost |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for model, runs in runs_by_model.items():
                ttft = [r.ttft_ms for r in runs]
                total = [r.total_ms for r in runs]
                lines.append(
                    f"| {model.replace('-', NB_HYPHEN)} | {len(runs)} | {format_ms(fmean(ttft))} / {format_ms(percentile(ttft, 95))} | "
                    f"{format_ms(fmean(total))} / {format_ms(percentile(total, 95))} | {_mean_rate(runs)} | "
                    f"{sum(r.completion_tokens for r in runs)} | ${sum(r.cost_usd for r in runs):.6f} |"
                )
        total_cost = sum(r.cost_usd for r in self.records)
        lines += ["", f"Cost (hypothetical cloud prices): total **${total_cost:.6f}**, blended **${total_cost / n:.6f} per answer** "
                  "(an escalated answer counts its draft and the large model's answer)."]
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    """'draft too short (5 tokens, minimum 12)' -> 'draft too short'; groups reasons for counting."""
    return reason.split(" (")[0].split(":")[0]


NB_HYPHEN = "\u2011"  # model names keep their hyphens without wrapping at them in a narrow table


def _mean_rate(runs: list[RunRecord]) -> str:
    """Mean decode rate over the requests long enough to measure one; a dash when there are none."""
    rates = [r.tokens_per_s for r in runs if r.tokens_per_s is not None]
    return f"{fmean(rates):.1f}" if rates else "–"
