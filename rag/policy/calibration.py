"""`rag calibrate` and `rag bench support`: fit the `support` model and measure every support signal.

Two tests, as issue 14 defines them, on a BEIR data set (corpus, queries, qrels):
- near miss: each judged query against the whole corpus (answerable) and against the corpus without its
  relevant documents (not answerable, though topically close documents remain);
- off topic: the same answerable queries against everyday questions (rag/data/everyday_questions.txt).
The corpus without a query's relevant documents is exact and cheap: the index is kept as raw postings
(`rag.index.segments`) and the relevant documents are masked, so N, df and the average length are those of a
rebuild without them. Fitting reads only the `train` split and the even-numbered everyday questions;
measuring reads the `test` split and the odd-numbered ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

from rag.index.analysis import Analyzer
from rag.beir import BeirDataset
from rag.metrics import auroc
from rag.index.search import IndexSnapshot, TITLE_B, TermSets, index_text, search_index, title_text
from rag.index.segments import Postings, SegmentedEngine, SegmentedField
from rag.index.support import PREDICTORS, SupportModel, predictor_values
from rag.types import Chunk, SearchResult, SupportSignals

Group = Literal["answerable", "near_miss", "off_topic"]
Split = Literal["train", "test"]

# Every signal the report gives an AUROC for; `support` first. All of them: higher means better supported.
REPORTED = (
    "support", "topical", "top_score", "normalized_top", "margin", "relative_margin", "nqc", "wig", "skew",
    "coverage", "weighted_coverage", "known_share", "typicality", "query_terms",
)
# In the fit, the near-miss and off-topic negatives each weigh half as much as all answerable queries
# together, so the classes balance and support 0.5 means "as likely answerable as not".
NEGATIVE_SHARE = {"near_miss": 0.5, "off_topic": 0.5}
L2 = 1.0  # ridge penalty on the standardised weights: keeps the eight correlated predictors stable


@dataclass(frozen=True)
class Example:
    """One question's retrieval signals, and which group it belongs to (answerable is the positive)."""

    group: Group
    question: str
    signals: SupportSignals
    top_relevant: bool = False  # answerable: the first passage is one of its relevant documents


def everyday_questions(split: Split) -> list[str]:
    """The shipped everyday questions: even-numbered lines for train, odd-numbered for test."""
    text = resources.files("rag").joinpath("data/everyday_questions.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return lines[0::2] if split == "train" else lines[1::2]


class MaskedCorpus:
    """A corpus searchable whole or with some chunks masked out, with exact statistics: N, df and the
    average length are those of an index rebuilt without them (raw postings, rag.index.segments)."""

    def __init__(self, chunks: Sequence[Chunk], terms: Sequence[Sequence[str]], analyzer: Analyzer, k1: float,
                 b: float, title_weight: float, model: SupportModel | None = None) -> None:
        self.chunks = tuple(chunks)
        self.analyzer = analyzer
        self.model = model
        self._k1, self._b, self._title_weight = k1, b, title_weight
        alive = np.ones(len(chunks), dtype=bool)
        self._body = SegmentedField([Postings.build(terms)], alive, k1, b)
        self._titles = SegmentedField([Postings.build([analyzer.terms(title_text(c)) for c in chunks])], alive, k1, TITLE_B)
        self._term_sets = TermSets(terms)
        self._whole = self._snapshot(())

    def _snapshot(self, removed: Sequence[int]) -> IndexSnapshot:
        body, titles = (self._body.removed(removed), self._titles.removed(removed)) if removed else (self._body, self._titles)
        return IndexSnapshot(self.chunks, self._term_sets, SegmentedEngine(body), k1=self._k1, b=self._b,
                             titles=SegmentedEngine(titles), title_weight=self._title_weight, live=body.alive)

    def search(self, text: str, removed: Sequence[int] = (), k: int = 10) -> SearchResult:
        """The search as the app does it, over the corpus without the chunks numbered `removed`."""
        snapshot = self._snapshot(removed) if removed else self._whole
        return search_index(snapshot, self.analyzer, text, k, model=self.model)


def collect(
    dataset: BeirDataset,
    everyday: Sequence[str],
    k1: float,
    b: float,
    title_weight: float,
    model: SupportModel,
    analyzer: Analyzer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Example]:
    """The signals of every judged query with and without its relevant documents, and of `everyday`."""
    analyzer = analyzer or Analyzer()
    chunks = [Chunk(source=i, index=0, text=text, start=0, end=len(text), title=title) for i, title, text in dataset.docs]
    corpus = MaskedCorpus(chunks, [analyzer.terms(index_text(c)) for c in chunks], analyzer, k1, b, title_weight, model)
    number = {c.source: n for n, c in enumerate(chunks)}
    examples: list[Example] = []
    total = len(dataset.queries) + len(everyday)
    for done, (query_id, text) in enumerate(dataset.queries.items(), start=1):
        relevant = [number[d] for d, grade in dataset.qrels.get(query_id, {}).items() if grade > 0 and d in number]
        if not relevant:
            continue  # judged, but none of its relevant documents is in the corpus: not answerable either way
        found = corpus.search(text)
        top = bool(found.passages) and number.get(found.passages[0].chunk.source) in relevant
        examples.append(Example("answerable", text, found.signals, top))
        examples.append(Example("near_miss", text, corpus.search(text, relevant).signals))
        if progress:
            progress(done, total)
    for done, text in enumerate(everyday, start=len(dataset.queries) + 1):
        examples.append(Example("off_topic", text, corpus.search(text).signals))
        if progress:
            progress(done, total)
    return examples


def signal_value(signals: SupportSignals, name: str) -> float:
    """A reported signal by name (all are fields of SupportSignals)."""
    return float(getattr(signals, name))


def aurocs(examples: Sequence[Example], names: Sequence[str] = REPORTED) -> dict[str, dict[str, float]]:
    """{test: {signal: AUROC}} for the near-miss and off-topic tests."""
    positives = [e.signals for e in examples if e.group == "answerable"]
    out: dict[str, dict[str, float]] = {}
    for test in ("near_miss", "off_topic"):
        negatives = [e.signals for e in examples if e.group == test]
        out[test] = {
            name: auroc([signal_value(s, name) for s in positives], [signal_value(s, name) for s in negatives])
            for name in names
        }
    return out


def fit(examples: Sequence[Example], fitted_on: str, l2: float = L2,
        features: Sequence[str] = PREDICTORS) -> SupportModel:
    """Weighted, ridge-penalised logistic regression by Newton's method, with every weight kept >= 0.

    Every predictor means "better supported" when it is higher, so a negative weight could only come from
    two correlated predictors trading off against each other on this collection, and it extrapolates
    badly elsewhere: fitted freely on SciFact, WIG took a negative weight and a one-word question on the
    bundled corpus ("What is BM25?") got support 0.00. Predictors whose weight would go negative are
    dropped (weight 0) and the rest refitted, until none is. Deterministic: the same examples always give
    the same coefficients.
    """
    rows = np.asarray([[predictor_values(e.signals)[p] for p in features] for e in examples], dtype=np.float64)
    labels = np.asarray([e.group == "answerable" for e in examples], dtype=np.float64)
    counts = {g: sum(1 for e in examples if e.group == g) for g in ("answerable", *NEGATIVE_SHARE)}
    if counts["answerable"] == 0 or not any(counts[g] for g in NEGATIVE_SHARE):
        raise ValueError("calibration needs answerable questions and at least one kind of negative")
    present = {g: s for g, s in NEGATIVE_SHARE.items() if counts[g]}
    share = {g: s / sum(present.values()) for g, s in present.items()}
    weight = {"answerable": 1.0, **{g: s * counts["answerable"] / counts[g] for g, s in share.items()}}
    sample = np.asarray([weight[e.group] for e in examples])
    sample /= sample.mean()

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    standard = (rows - mean) / scale
    active = list(range(len(features)))
    while True:
        w = _logistic(standard[:, active], labels, sample, l2)
        negative = [a for a, v in zip(active, w[:-1]) if v < 0]
        if not negative:
            break
        active = [a for a in active if a not in negative]
    weights = np.zeros(len(features))
    weights[active] = w[:-1]
    return SupportModel(
        features=tuple(features),
        mean=tuple(round(float(v), 10) for v in mean),
        scale=tuple(round(float(v), 10) for v in scale),
        weights=tuple(round(float(v), 10) for v in weights),
        bias=round(float(w[-1]), 10),
        fitted_on=fitted_on,
    )


def _logistic(x: np.ndarray, labels: np.ndarray, sample: np.ndarray, l2: float) -> np.ndarray:
    """Weights (last: the unpenalised bias) of a weighted ridge logistic regression, by Newton's method."""
    x = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.diag([l2] * (x.shape[1] - 1) + [0.0])
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        gradient = x.T @ (sample * (p - labels)) + penalty @ w
        hessian = x.T @ (x * (sample * p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return w


def format_report(results: dict[str, dict[str, float]], title: str, counts: dict[str, int],
                  notes: Sequence[str] = ()) -> str:
    """A Markdown table: one row per signal, the AUROC of each test."""
    lines = [
        f"### {title}",
        "",
        f"{counts.get('answerable', 0)} answerable questions, {counts.get('near_miss', 0)} near misses, "
        f"{counts.get('off_topic', 0)} off-topic questions.",
        *(f"{note}" for note in notes),
        "",
        "| signal | AUROC near miss | AUROC off topic |",
        "|---|---:|---:|",
    ]
    for name in REPORTED:
        lines.append(f"| {name} | {results['near_miss'][name]:.3f} | {results['off_topic'][name]:.3f} |")
    return "\n".join(lines)


def group_counts(examples: Sequence[Example]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in examples:
        out[e.group] = out.get(e.group, 0) + 1
    return out



def policy_notes(examples: Sequence[Example], off_topic_support: float, min_support: float) -> list[str]:
    """What the thresholds do on these questions: refusals of answerable ones, off-topic ones caught."""
    def share(group: str, below: float, topical: bool = False) -> float:
        values = [(e.signals.topical if topical else e.signals.support) < below for e in examples if e.group == group]
        return sum(values) / len(values) if values else 0.0

    answerable = [e for e in examples if e.group == "answerable"]
    first = sum(e.top_relevant for e in answerable) / len(answerable) if answerable else 0.0
    return [
        f"Relevant document ranked first for {first:.0%} of answerable questions (removing the others' "
        "relevant documents changes little at the top: the near-miss ceiling for retrieval signals).",
        f"Below the off-topic threshold {off_topic_support:.0%} (on topic): "
        f"{share('answerable', off_topic_support, True):.1%} of answerable questions (refused), "
        f"{share('off_topic', off_topic_support, True):.0%} of off-topic ones, "
        f"{share('near_miss', off_topic_support, True):.0%} of near misses.",
        f"Below the escalation threshold {min_support:.0%}: {share('answerable', min_support):.0%} of answerable, "
        f"{share('near_miss', min_support):.0%} of near misses, {share('off_topic', min_support):.0%} of off-topic.",
    ]
