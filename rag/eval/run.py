"""Run an evaluation set through the pipeline, once per mode, and keep what each answer did."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from rag.errors import RagError
from rag.index.languages import refuses
from rag.eval.judge import Scores, judge
from rag.eval.questions import EvalQuestion, facts_found
from rag.llm.client import ChatModel
from rag.answer.options import AnswerOptions
from rag.answer.pipeline import Pipeline
from rag.types import Answer, Mode

SEED = 7  # sent with every request (servers that take a seed sample reproducibly)


@dataclass(frozen=True)
class EvalRecord:
    """One question answered in one mode."""

    mode: Mode
    question: EvalQuestion
    answer: str
    model: str
    retrieved: tuple[str, ...]  # documents of the sources given to the model, best first
    cited: tuple[str, ...]  # documents the answer cites
    facts_found: int
    refused: bool  # the answer says the documents do not cover it (or the app refused as off topic)
    escalated: bool
    reasons: tuple[str, ...]
    timings_ms: Mapping[str, float]
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    scores: Scores | None = None
    judge_error: str | None = None


def record_of(mode: Mode, question: EvalQuestion, answer: Answer) -> EvalRecord:
    by_number = {ref.number: ref.passage.chunk.source for ref in answer.sources}
    return EvalRecord(
        mode=mode,
        question=question,
        answer=answer.text,
        model=answer.model,
        retrieved=tuple(ref.passage.chunk.source for ref in answer.sources),
        cited=tuple(dict.fromkeys(by_number[n] for n in answer.cited if n in by_number)),
        facts_found=facts_found(answer.text, question.facts),
        refused=answer.model == "off-topic" or refuses(answer.text),
        escalated=answer.escalated,
        reasons=answer.reasons,
        timings_ms=MappingProxyType(dict(answer.timings_ms)),
        cost_usd=answer.cost_usd,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
    )


async def run_eval(
    pipeline: Pipeline,
    options: AnswerOptions,
    questions: Sequence[EvalQuestion],
    modes: Sequence[Mode],
    judge_model: ChatModel | None = None,
    progress: Callable[[], None] | None = None,
) -> list[EvalRecord]:
    """Every question in every mode, at temperature 0 with a fixed seed; then the judge, if any."""
    records: list[EvalRecord] = []
    for mode in modes:
        opts = replace(options, mode=mode, temperature=0.0, seed=SEED)
        for question in questions:
            answer: Answer | None = None
            async for event in pipeline.run(question.question, (), opts):
                if isinstance(event, Answer):
                    answer = event
            assert answer is not None, "the pipeline ends with an Answer"
            record = record_of(mode, question, answer)
            if judge_model is not None:
                texts = [ref.passage.chunk.text for ref in answer.sources]
                try:
                    scores = await judge(judge_model, question.question, answer.text, texts, SEED,
                                         options.large_max_tokens)
                    record = replace(record, scores=scores)
                except RagError as exc:
                    record = replace(record, judge_error=str(exc))
            records.append(record)
            if progress:
                progress()
    return records
