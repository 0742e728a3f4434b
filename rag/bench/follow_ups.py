"""`rag bench follow-ups`: is each question of a set of pairs read right (follow-up or new), and what
does a follow-up retrieve?

A pair set is JSON lines: {"previous": "...", "question": "...", "follow_up": true, "lang": "en", "kind":
"pronoun", "split": "dev"}; the shipped one is rag/data/follow_ups.jsonl. Reported:

- decisions: the share read right, overall, per split (the rules were written looking at "dev" only),
  per language and per label;
- retrieval over a corpus (the bundled one by default), for the pairs labelled follow-up whose question
  names something of its own: the share of the top 3 passages that hold one of the question's own
  words, searched as the app did before (both questions joined, every word alike) and as it does now
  (the previous question's words at EARLIER_WEIGHT); and for the pairs labelled new, how many of the
  top 3 of the question alone a wrong reading (searched as a follow-up) keeps, joined and weighted.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rag.answer.follow_ups import is_follow_up
from rag.config import Settings
from rag.errors import RagError
from rag.index.search import index_text, search_index
from rag.runtime import build_retriever

TOP = 3


@dataclass(frozen=True)
class Pair:
    previous: str
    question: str
    follow_up: bool
    lang: str
    kind: str = ""
    split: str = ""


@dataclass(frozen=True)
class Share:
    right: int
    total: int

    @property
    def rate(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass
class FollowUpReport:
    pairs: int
    right: Share
    by_split: dict[str, Share]
    by_language: dict[str, Share]
    by_label: dict[str, Share]
    wrong: list[str]
    own_words_joined: float = 0.0  # follow-ups: share of the top TOP passages holding a word of the question's own
    own_words_weighted: float = 0.0
    new_kept_joined: float = 0.0  # new questions read as follow-ups: share of their own top TOP kept
    new_kept_weighted: float = 0.0
    retrieval_pairs: dict[str, int] = field(default_factory=dict)


def read_pairs(path: Path | None = None) -> list[Pair]:
    """The pair set at `path`, or the shipped one."""
    try:
        text = (path.read_text(encoding="utf-8") if path is not None
                else resources.files("rag.data").joinpath("follow_ups.jsonl").read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [Pair(str(r["previous"]), str(r["question"]), bool(r["follow_up"]), str(r.get("lang", "")),
                     str(r.get("kind", "")), str(r.get("split", ""))) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path or 'follow_ups.jsonl'}: not a pair set (previous, question, follow_up): {exc}") from exc


def _tally(pairs: Sequence[Pair], right: Sequence[bool], key: str) -> dict[str, Share]:
    out: dict[str, list[int]] = {}
    for pair, ok in zip(pairs, right):
        name = ("follow-up" if pair.follow_up else "new") if key == "label" else str(getattr(pair, key) or "-")
        tally = out.setdefault(name, [0, 0])
        tally[0] += ok
        tally[1] += 1
    return {name: Share(r, t) for name, (r, t) in sorted(out.items())}


def decisions(pairs: Sequence[Pair]) -> FollowUpReport:
    """How many pairs `is_follow_up` reads right, and which it does not."""
    right = [is_follow_up(p.question, p.previous) == p.follow_up for p in pairs]
    wrong = [f"{p.lang} {'follow-up' if p.follow_up else 'new'} read wrong: {p.previous!r} → {p.question!r}"
             for p, ok in zip(pairs, right) if not ok]
    return FollowUpReport(len(pairs), Share(sum(right), len(pairs)), _tally(pairs, right, "split"),
                          _tally(pairs, right, "lang"), _tally(pairs, right, "label"), wrong)


def run_follow_up_bench(pairs: Sequence[Pair], corpus: Path | None = None) -> FollowUpReport:
    """Decisions, then retrieval over `corpus` (the bundled one when None; state in a temporary folder)."""
    report = decisions(pairs)
    with tempfile.TemporaryDirectory() as data:
        overrides = {"corpus_dir": corpus} if corpus is not None else {}
        retriever = build_retriever(Settings(data_dir=Path(data), _env_file=None, **overrides))  # type: ignore[arg-type]
        retriever.warm_up()
        snapshot, analyzer = retriever.snapshot, retriever.analyzer
        assert snapshot is not None

        def top(question: str, earlier: str = "") -> set[tuple[str, int]]:
            found = search_index(snapshot, analyzer, question, TOP, earlier=earlier).passages
            return {(p.chunk.source, p.chunk.index) for p in found}

        def own_share(question: str, query: str, earlier: str) -> float | None:
            own = {t for group in analyzer.query_groups(question) for t in group}
            found = search_index(snapshot, analyzer, query, TOP, earlier=earlier).passages
            if not own or not found:
                return None
            return sum(bool(own & set(analyzer.terms(index_text(p.chunk)))) for p in found) / len(found)

        joined, weighted, kept_joined, kept_weighted = [], [], [], []
        for p in pairs:
            if p.follow_up:
                a = own_share(p.question, f"{p.previous}\n{p.question}", "")
                b = own_share(p.question, p.question, p.previous)
                if a is not None and b is not None:
                    joined.append(a)
                    weighted.append(b)
            else:
                alone = top(p.question)
                if alone:
                    kept_joined.append(len(alone & top(f"{p.previous}\n{p.question}")) / len(alone))
                    kept_weighted.append(len(alone & top(p.question, p.previous)) / len(alone))
    report.own_words_joined, report.own_words_weighted = mean(joined), mean(weighted)
    report.new_kept_joined, report.new_kept_weighted = mean(kept_joined), mean(kept_weighted)
    report.retrieval_pairs = {"follow-up": len(joined), "new": len(kept_joined)}
    return report


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def read_questions(path: Path) -> list[str]:
    """Questions one per line, or a BEIR queries.jsonl (its "text")."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [str(json.loads(line)["text"]) if line.lstrip().startswith("{") else line.strip() for line in lines]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}: not a question list (one per line, or BEIR queries.jsonl): {exc}") from exc


def standalone(questions: Sequence[str]) -> tuple[Share, list[str]]:
    """Each question after the one before it in a set of unrelated questions (a benchmark's queries): all
    are new, so this counts false follow-ups on questions nobody wrote for this test."""
    read = [(q, is_follow_up(q, p)) for p, q in zip(questions, questions[1:])]
    return Share(sum(not f for _, f in read), len(read)), [q for q, f in read if f]


# Messages a user (or a paste) could send, each a unit repeated: every one of these once made a rule's
# pattern backtrack, so that reading took time growing with the square of the length or worse, on the
# event loop ("tried it " x 4,000: 32 s; "ok " x 20,000: 1.4 s). Reading should grow with the length.
HOSTILE_UNITS = ("ok ", "tried it ", "and ", "A, ", "it, ", "¿ ", "Xy and it ", "呢", "then ", "what about ",
                 "did that and ", "didnt work ", "no funciona ", "那", "a1 ", "Foo, bar and it ", "that ", "e ",
                 "... ", "x\n", "Ollama, it ", " " * 8 + "and",
                 # one long run between two words: "呢" + 20,000 spaces + "x" took 1.7 s, quadratic
                 ("呢", " ", "x"), ("¿", " ", "y"), ("and", " ", "it"), ("didn't work", " ", "?"),
                 # a comparative, then "than" only at the end; runs after the words that end a message
                 ("", "anything cheaper ", "than x"), ("ändert", " ", "x"), ("chalega", " ", "x"), ("ho to", "?", "x"),
                 ("也要办吗", " ", "x"), "也", "zahlen wir dann ", ("does that work", " ", "x"), "按了", "hä, ",
                 ("i thought", " ", "x"), "wird es ", ("anything", " ", "cheaper"), "and whats the fee ")


@dataclass(frozen=True)
class HostileTiming:
    """Reading one unit repeated `small` and `large` times: seconds, and large / small."""

    unit: str  # the repeated unit, or "<before><unit>…<after>"
    small_s: float
    large_s: float

    @property
    def growth(self) -> float:
        return self.large_s / self.small_s if self.small_s > 0 else 0.0


def hostile(small: int = 5_000, large: int = 20_000,
            units: Sequence[str | tuple[str, str, str]] = HOSTILE_UNITS) -> list[HostileTiming]:
    """Time reading each hostile message (as the question, then as the previous one of two questions that
    read it) at two lengths: a linear reader grows by large / small (x4 by default), a quadratic one by its
    square."""
    timings = []
    for unit in units:
        before, repeated, after = unit if isinstance(unit, tuple) else ("", unit, "")
        seconds = []
        for repeats in (small, large):
            message = before + repeated * repeats + after
            started = time.perf_counter()
            is_follow_up(message, "How do I reset it, and what is BM25?")
            # questions that read the previous one: whether it names options, and its subject words
            is_follow_up("which is cheaper?", message)
            is_follow_up("year 11", message)
            seconds.append(time.perf_counter() - started)
        timings.append(HostileTiming(f"{before}{repeated}…{after}" if before or after else repeated,
                                     round(seconds[0], 4), round(seconds[1], 4)))
    return timings


def render_hostile(timings: Sequence[HostileTiming]) -> str:
    lines = ["reading a message of one unit repeated 5,000 / 20,000 times (as the question, then as the previous one):"]
    for t in timings:
        flag = "  <- grows faster than the text" if t.growth > 6 and t.large_s > 0.05 else ""
        lines.append(f"  {t.unit!r:24} {t.small_s:7.3f} s {t.large_s:7.3f} s  x{t.growth:.1f}{flag}")
    return "\n".join(lines)


def render(report: FollowUpReport) -> str:
    lines = [f"{report.right.right}/{report.pairs} pairs read right ({report.right.rate:.1%})"]
    for title, shares in (("split", report.by_split), ("language", report.by_language), ("label", report.by_label)):
        lines.append(f"  by {title}: " + ", ".join(f"{k} {s.right}/{s.total} ({s.rate:.0%})" for k, s in shares.items()))
    lines += [f"  {w}" for w in report.wrong]
    if report.retrieval_pairs:
        lines += [
            f"follow-ups ({report.retrieval_pairs['follow-up']}): top {TOP} passages holding a word of the question's own: "
            f"joined {report.own_words_joined:.0%}, weighted {report.own_words_weighted:.0%}",
            f"new questions read as follow-ups ({report.retrieval_pairs['new']}): their own top {TOP} kept: "
            f"joined {report.new_kept_joined:.0%}, weighted {report.new_kept_weighted:.0%}",
        ]
    return "\n".join(lines)
