"""`rag eval --judge MODEL`: rubric scores 1-5 from a judge model, with its prompt printed in the report."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.errors import RagError
from rag.llm.client import ChatModel, ModelDelta
from rag.types import Generation

JUDGE_PROMPT = """You grade answers of a question-answering assistant that must answer only from the sources given.
Score the answer from 1 (poor) to 5 (excellent) on three criteria:
- coherence: is it clear, well-formed and on the question?
- factuality: is every claim supported by the sources below? (If the sources do not answer the question, an
  answer that says so is fully factual; an answer that invents is not.)
- conciseness: does it say what is needed without padding or repetition?
Reply with one JSON object and nothing else, for example {"coherence": 4, "factuality": 5, "conciseness": 3}.

Question: {question}

Sources:
{sources}

Answer:
{answer}"""

CRITERIA = ("coherence", "factuality", "conciseness")
_OBJECT = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Scores:
    coherence: int
    factuality: int
    conciseness: int


def judge_messages(question: str, answer: str, sources: Sequence[str]) -> list[dict[str, str]]:
    listed = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(sources, start=1)) or "(none)"
    prompt = JUDGE_PROMPT.replace("{question}", question).replace("{sources}", listed).replace("{answer}", answer)
    return [{"role": "user", "content": prompt}]


def parse_scores(text: str) -> Scores:
    """The last JSON object in the judge's reply with three integer scores 1-5; RagError otherwise."""
    for candidate in reversed(_OBJECT.findall(text)):
        try:
            raw = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(raw, dict) and all(isinstance(raw.get(c), (int, float)) and 1 <= raw[c] <= 5 for c in CRITERIA):
            return Scores(*(int(round(raw[c])) for c in CRITERIA))
    raise RagError(f"the judge gave no scores: {text[:120]!r}")


async def judge(model: ChatModel, question: str, answer: str, sources: Sequence[str], seed: int | None,
                max_tokens: int) -> Scores:
    """One answer's scores, at temperature 0, in at most `max_tokens` (the large model's budget: a reasoning
    judge such as gpt-oss-20b thinks before it scores)."""
    generation: Generation | None = None
    async for item in model.stream(judge_messages(question, answer, sources), max_tokens, 0.0, False, seed):
        if not isinstance(item, ModelDelta):
            generation = item
    if generation is None:
        raise RagError("the judge's stream ended without a result")
    return parse_scores(generation.text)
