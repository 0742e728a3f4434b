"""The live status line and step titles, on a fake clock."""

from rag.chat import progress
from rag.types import Generation, ReasoningDelta, TokenDelta


def test_a_reasoning_model_never_looks_hung() -> None:
    state = progress.begin("gpt-oss-20b", 100.0)
    assert progress.status_line(state, 103.2) == "gpt-oss-20b is reading the question and sources · 3 s"
    assert progress.live_title(state, 103.2) == "gpt-oss-20b · waiting for first token · 3 s"
    for _ in range(230):
        state = progress.advance(state, ReasoningDelta("final", "gpt-oss-20b", "hm"), 104.5)
    assert progress.status_line(state, 114.0) == "gpt-oss-20b is reasoning · 14 s · 230 tokens"
    assert progress.live_title(state, 114.0) == "gpt-oss-20b · first token 4.5 s · 230 tokens"
    state = progress.advance(state, TokenDelta("final", "gpt-oss-20b", "Port"), 115.0)
    assert state.answer_pieces == 1 and state.first_text == 104.5  # the first text of any kind


def _gen(tokens: int, first_ms: float, last_ms: float, rate: float) -> Generation:
    return Generation("phi-4-mini", "p", "u", "t", "", 100, tokens, False, first_ms, last_ms, rate)


def test_a_rate_is_shown_only_when_it_means_something() -> None:
    assert progress.rate(_gen(5, 300, 302, 2000.0)) is None  # 5 tokens in 2 ms: noise
    assert progress.rate(_gen(400, 300, 310, 40000.0)) is None  # a burst in 10 ms: noise
    assert progress.rate(_gen(40, 300, 2300, 19.5)) == 19.5
    assert progress.final_title(_gen(5, 300, 302, 2000.0)) == "phi-4-mini · first token 300 ms · 5 tokens · – tok/s"
    assert progress.final_title(_gen(40, 1300, 3300, 19.5)) == "phi-4-mini · first token 1.3 s · 40 tokens · 20 tok/s"
