"""The conversation value: what a chat remembers, as pure updates; and its round trip for persistence."""

import json
from types import MappingProxyType

from rag.chat import conversation as chat
from rag.answer.options import AnswerOptions, ChatChoices
from rag.types import Answer, Chunk, Column, Comparison, Passage, SourceRef

OPTIONS = AnswerOptions(mode="auto", top_k=5)


def _sources() -> tuple[SourceRef, ...]:
    chunks = [Chunk("servers/ollama.md", 2, "Ollama listens on 11434.", 0, 24, "Ollama", heading="Ports"),
              Chunk("guide.md", 0, "Other text.", 0, 11, "Guide")]
    return tuple(SourceRef(i, Passage(c, 5.0 - i, i)) for i, c in enumerate(chunks, start=1))


def _answer(text: str, cited: tuple[int, ...] = (1,)) -> Answer:
    return Answer(text, "phi-4-mini", "phi-4-mini", "http://x/v1", "auto", False, (), _sources(), cited,
                  MappingProxyType({"total": 5.0}), 10, 5, False, 0.0)


def test_a_new_chat_starts_from_the_settings() -> None:
    conversation = chat.start(OPTIONS)
    assert conversation.exchanges == () and conversation.choices == ChatChoices.of(OPTIONS)
    assert conversation.options(OPTIONS) == OPTIONS and not conversation.side_by_side


def test_answers_are_remembered_with_what_they_cited() -> None:
    conversation = chat.remember_answer(chat.start(OPTIONS), "Which port?", _answer("11434 [1]."))
    (exchange,) = conversation.exchanges
    assert (exchange.question, exchange.answer, exchange.mode, exchange.model) == ("Which port?", "11434 [1].", "auto", "phi-4-mini")
    assert [(c.number, c.source, c.chunk, c.location) for c in exchange.cited] == [(1, "servers/ollama.md", 2, "servers/ollama.md › Ports")]
    assert [(t.question, t.answer) for t in conversation.turns()] == [("Which port?", "11434 [1].")]


def test_every_exchange_is_kept_and_follow_ups_see_the_last_twenty() -> None:
    conversation = chat.start(OPTIONS)
    for i in range(25):
        conversation = chat.remember_answer(conversation, f"q{i}", _answer(f"a{i}"))
    assert len(conversation.exchanges) == 25  # history and export show them all
    turns = conversation.turns()
    assert len(turns) == chat.MAX_REMEMBERED == 20
    assert turns[0].question == "q5" and turns[-1].question == "q24"
    restored = chat.from_dict(json.loads(json.dumps(chat.to_dict(conversation))))
    assert restored == conversation


def test_a_side_by_side_turn_remembers_both_answers_labelled() -> None:
    comparison = Comparison("q", (Column("phi-4-mini", "p", "Small says 11434 [1].", cited=(1,)),
                                  Column("gpt-oss-20b", "g", "Large says 11434 [2].", cited=(2,))), _sources(), {})
    (exchange,) = chat.remember_comparison(chat.start(OPTIONS), "Which port?", comparison).exchanges
    assert exchange.answer == "phi-4-mini: Small says 11434 [1].\n\ngpt-oss-20b: Large says 11434 [2]."
    assert exchange.mode == "compare" and exchange.model == "phi-4-mini vs gpt-oss-20b"
    assert [c.number for c in exchange.cited] == [1, 2]


def test_a_side_by_side_turn_with_one_failure_keeps_the_other_and_with_two_nothing() -> None:
    one = Comparison("q", (Column("phi-4-mini", "p", "Small answer."), Column("gpt-oss-20b", "g", "", error="down")), (), {})
    (exchange,) = chat.remember_comparison(chat.start(OPTIONS), "q", one).exchanges
    assert exchange.answer == "phi-4-mini: Small answer."
    both = Comparison("q", (Column("phi-4-mini", "p", error="down"), Column("gpt-oss-20b", "g", error="down")), (), {})
    assert chat.remember_comparison(chat.start(OPTIONS), "q", both).exchanges == ()


def test_a_stopped_answer_keeps_its_question_for_the_follow_up() -> None:
    """Stopping a long answer and asking "shorter please" is common: the follow-up must see the question
    (a first-contact walk found it searched alone, with nothing about the stopped question)."""
    stopped = chat.remember_stopped(chat.start(OPTIONS), "How do I run the models with vLLM?", " Start vLLM with ")
    (exchange,) = stopped.exchanges
    assert (exchange.question, exchange.answer, exchange.model) == ("How do I run the models with vLLM?",
                                                                   "Start vLLM with\n\n(stopped)", "stopped")
    assert exchange.mode == "auto"
    from rag.answer.follow_ups import retrieval_query
    assert retrieval_query("shorter please", stopped.turns()) == ("shorter please", "How do I run the models with vLLM?")
    empty = chat.remember_stopped(chat.choose(chat.start(OPTIONS), {"mode": "compare"}), "Which port?", "")
    assert empty.exchanges[0].answer == "(stopped before any answer)" and empty.exchanges[0].mode == "compare"
    assert chat.from_dict(json.loads(json.dumps(chat.to_dict(stopped)))) == stopped


def test_chosen_settings_are_clamped_and_change_only_the_next_options() -> None:
    conversation = chat.choose(chat.start(OPTIONS), {"mode": "compare", "top_k": 500, "temperature": "hot", "min_support": 0.3})
    assert conversation.side_by_side and conversation.choices.top_k == 50 and conversation.choices.temperature == OPTIONS.temperature
    options = conversation.options(OPTIONS)
    assert options.mode == "auto" and options.top_k == 50 and options.policy.min_support == 0.3
    assert chat.choose(conversation, {"mode": "turbo"}).choices.mode == "compare"  # unknown modes are ignored


def test_round_trip_through_json() -> None:
    conversation = chat.choose(chat.start(OPTIONS), {"mode": "large", "top_k": 8})
    conversation = chat.remember_answer(conversation, "Which port?", _answer("11434 [1]."))
    restored = chat.from_dict(json.loads(json.dumps(chat.to_dict(conversation))))
    assert restored == conversation
    tampered = chat.to_dict(conversation) | {"choices": {"top_k": -3, "mode": "evil"}, "unknown": 1}
    assert chat.from_dict(tampered).choices.top_k == 1 and chat.from_dict(tampered).choices.mode == "auto"
