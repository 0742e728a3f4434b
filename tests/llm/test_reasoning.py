import random

import pytest

from rag.llm.reasoning import Piece, ReasoningSplitter

TAGGED = (
    "<|channel|>analysis<|message|>The user asks about ports. Sources say 11434.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Ollama uses port 11434 [1].<|return|>"
)
STRIPPED = "analysisThe user asks about ports. Sources say 11434.assistantfinalOllama uses port 11434 [1]."


def _run(chunks: list[str], harmony: bool = True) -> tuple[str, str, ReasoningSplitter]:
    splitter = ReasoningSplitter(harmony=harmony)
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    pieces += splitter.finish()
    answer = "".join(p.text for p in pieces if p.kind == "answer")
    reasoning = "".join(p.text for p in pieces if p.kind == "reasoning")
    return answer, reasoning, splitter


def _split_randomly(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), k=min(25, len(text) - 1)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


@pytest.mark.parametrize("seed", range(20))
def test_tagged_harmony_with_tags_split_across_chunks(seed: int) -> None:
    answer, reasoning, splitter = _run(_split_randomly(TAGGED, seed))
    assert answer == "Ollama uses port 11434 [1]."
    assert reasoning == "The user asks about ports. Sources say 11434."
    assert splitter.saw_final and splitter.structured


def test_tagged_harmony_one_character_at_a_time() -> None:
    answer, reasoning, _ = _run(list(TAGGED))
    assert answer == "Ollama uses port 11434 [1]."
    assert "<|" not in answer + reasoning


@pytest.mark.parametrize("seed", range(20))
def test_stripped_harmony_split_anywhere(seed: int) -> None:
    answer, reasoning, splitter = _run(_split_randomly(STRIPPED, seed))
    assert answer == "Ollama uses port 11434 [1]."
    assert reasoning == "The user asks about ports. Sources say 11434."
    assert splitter.saw_final


def test_no_final_channel_is_detectable() -> None:
    answer, reasoning, splitter = _run(["<|channel|>analysis<|message|>Thinking and thinking", " until the budget ends"])
    assert answer == "" and reasoning.startswith("Thinking") and not splitter.saw_final
    answer, reasoning, splitter = _run(["analysisStill thinking when max_tokens hit"])
    assert answer == "" and not splitter.saw_final


def test_plain_answers_pass_through_untouched() -> None:
    text = "Analysis of the sources shows port 11434 [1]. Use <|not a tag|> literally."
    answer, reasoning, splitter = _run(_split_randomly(text, 3), harmony=False)
    assert answer == text and reasoning == "" and not splitter.structured


def test_a_plain_answer_starting_with_analysis_is_not_reasoning_for_non_harmony_models() -> None:
    answer, reasoning, _ = _run(["analysis", "shows that BM25 works."], harmony=False)
    assert answer == "analysisshows that BM25 works."
    assert reasoning == ""


def test_answer_streams_before_the_end() -> None:
    splitter = ReasoningSplitter(harmony=True)
    splitter.feed("<|channel|>final<|message|>Hello ")
    assert splitter.feed("world") == [Piece("answer", "world")]


def test_commentary_channel_is_not_answer() -> None:
    text = "<|channel|>commentary to=functions.search<|message|>{}<|call|><|start|>assistant<|channel|>final<|message|>Done."
    answer, reasoning, _ = _run([text])
    assert answer == "Done." and reasoning == "{}"


THINK = "<think>\nThe user asks about ports. Source 1 says 11434.\n</think>\n\nOllama uses port 11434 [1]."


@pytest.mark.parametrize("seed", range(20))
def test_think_tags_split_across_chunks(seed: int) -> None:
    answer, reasoning, splitter = _run(_split_randomly(THINK, seed), harmony=False)
    assert answer == "Ollama uses port 11434 [1]."
    assert reasoning.strip() == "The user asks about ports. Source 1 says 11434."
    assert splitter.format == "think tags" and splitter.saw_final


def test_think_tags_one_character_at_a_time_and_empty_thinking() -> None:
    assert _run(list(THINK), harmony=False)[0] == "Ollama uses port 11434 [1]."
    answer, reasoning, _ = _run(["<think>\n\n</think>\n\n", "Port 11434 [1]."], harmony=False)  # Qwen3, thinking off
    assert (answer, reasoning) == ("Port 11434 [1].", "")


def test_thinking_that_never_ends_is_never_shown_as_the_answer() -> None:
    answer, reasoning, splitter = _run(["<think>I should check the sources", " and then answer..."], harmony=False)
    assert answer == "" and reasoning == "I should check the sources and then answer..."
    assert splitter.structured and not splitter.saw_final  # the client reports "no final answer"


def _run_implicit(chunks: list[str]) -> tuple[str, str]:
    splitter = ReasoningSplitter(implicit_think=True)
    pieces = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.finish()
    return ("".join(p.text for p in pieces if p.kind == "answer"), "".join(p.text for p in pieces if p.kind == "reasoning"))


def test_deepseek_r1_thinks_without_the_opening_tag() -> None:
    assert _run_implicit(["Okay, the user asks", " about ports.</th", "ink>\n\nPort 11434 [1]."]) == (
        "Port 11434 [1].", "Okay, the user asks about ports.")
    # No </think> at all: the model did not think, and its text is the answer.
    assert _run_implicit(["Port 11434 ", "[1]."]) == ("Port 11434 [1].", "")
