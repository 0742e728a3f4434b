"""`rag bench languages`: which section answers each question of a question set, per language.

A question set is JSON lines: {"lang": "mr", "question": "...", "sections": ["heading", ...]}; a passage
answers when its heading path contains one of the sections. Hit@1 and hit@3 per language, retrieval by
the app's own library, analyzer and index over a corpus folder.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError
from rag.index.search import search_index
from rag.runtime import build_retriever


@dataclass(frozen=True)
class LanguageHits:
    language: str
    questions: int
    hit_at_1: float
    hit_at_3: float
    misses: tuple[str, ...]  # "question -> top section" for every question not answered first


def read_questions(path: Path) -> list[dict[str, object]]:
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise RagError(f"{path}: not a question set ({exc})") from exc
    for row in rows:
        if not (isinstance(row, dict) and row.get("question") and row.get("sections") and row.get("lang")):
            raise RagError(f"{path}: every line needs lang, question and sections: {row!r}")
    return rows


def section_hits(corpus: Path, questions: list[dict[str, object]]) -> list[LanguageHits]:
    """Index `corpus` (state in a temporary folder) and score every question."""
    with tempfile.TemporaryDirectory() as data:
        retriever = build_retriever(Settings(corpus_dir=corpus, data_dir=Path(data), _env_file=None))
        retriever.warm_up()
        snapshot = retriever.snapshot
        assert snapshot is not None
        tallies: dict[str, list[int]] = {}
        misses: dict[str, list[str]] = {}
        for row in questions:
            language, question = str(row["lang"]), str(row["question"])
            sections = [str(s) for s in row["sections"]]  # type: ignore[attr-defined]
            found = search_index(snapshot, retriever.analyzer, question, 3).passages
            good = [any(s in (p.chunk.heading or "") for s in sections) for p in found]
            tally = tallies.setdefault(language, [0, 0, 0])
            tally[0] += 1
            tally[1] += bool(good[:1] and good[0])
            tally[2] += any(good)
            if not (good[:1] and good[0]):
                top = (found[0].chunk.heading or found[0].chunk.source).split(" › ")[-1] if found else "nothing"
                misses.setdefault(language, []).append(f"{question} -> {top}")
    return [LanguageHits(lang, n, one / n, three / n, tuple(misses.get(lang, ())))
            for lang, (n, one, three) in tallies.items()]
