"""The evaluation set: JSON lines of questions, the facts a good answer contains, the documents that
support it, and whether the corpus can answer it at all."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rag.errors import RagError


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    facts: tuple[str, ...]  # strings a good answer contains (case and backticks ignored)
    sources: tuple[str, ...]  # corpus paths that support the answer
    answerable: bool


def bundled_set() -> str:
    """The shipped set for the bundled corpus (67 questions, 17 of them unanswerable from it)."""
    return resources.files("rag").joinpath("data/eval_bundled.jsonl").read_text(encoding="utf-8")


def load_set(path: Path | None) -> list[EvalQuestion]:
    """Read a set (default: the bundled one); every defect is a RagError naming the line."""
    where = str(path) if path else "rag/data/eval_bundled.jsonl"
    try:
        text = path.read_text(encoding="utf-8") if path else bundled_set()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read the question set {where}: {exc}") from exc
    questions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = row["question"]
            answerable = row.get("answerable", True)
            facts = row.get("facts", [])
            sources = row.get("sources", [])
            if not (isinstance(question, str) and question.strip() and isinstance(answerable, bool)
                    and isinstance(facts, list) and isinstance(sources, list)
                    and all(isinstance(x, str) for x in [*facts, *sources])):
                raise ValueError("question must be text, answerable true/false, facts and sources lists of text")
            if answerable and not sources:
                raise ValueError("an answerable question needs the documents that support it")
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{where}, line {number}: {exc}") from exc
        questions.append(EvalQuestion(question.strip(), tuple(facts), tuple(sources), answerable))
    if not questions:
        raise RagError(f"{where}: no questions")
    return questions


def normalise(text: str) -> str:
    """For fact matching: case, backticks, asterisks and runs of whitespace do not count."""
    return re.sub(r"\s+", " ", text.casefold().replace("`", "").replace("*", "")).strip()


def facts_found(answer: str, facts: tuple[str, ...]) -> int:
    """How many of `facts` the answer contains."""
    said = normalise(answer)
    return sum(normalise(fact) in said for fact in facts)
