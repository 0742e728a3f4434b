"""The side-by-side columns as a value advanced by events."""

from rag.chat import columns
from rag.types import Column, Comparison, Generation, ModelFailed, ModelFinished, ModelStarted, ReasoningDelta, TokenDelta


def _gen(alias: str) -> Generation:
    return Generation(alias, alias, "http://x/v1", "Final text [1].", "thought", 100, 24, True, 150.0, 1750.0, 14.4)


def test_columns_follow_the_events_of_both_models() -> None:
    state: columns.Columns = {}
    for event in (ModelStarted("left", "phi-4-mini", "p", "u"), ModelStarted("right", "gpt-oss-20b", "g", "u"),
                  TokenDelta("left", "phi-4-mini", "Final "), ReasoningDelta("right", "gpt-oss-20b", "hmm"),
                  TokenDelta("right", "gpt-oss-20b", "Big")):
        state = columns.advance(state, event)
    assert (state["left"].status, state["left"].column.text) == ("streaming", "Final ")
    assert (state["right"].column.text, state["right"].column.reasoning) == ("Big", "hmm")
    state = columns.advance(state, ModelFinished("left", _gen("phi-4-mini"), 0.002))
    state = columns.advance(state, ModelFailed("right", "gpt-oss-20b", "gpt-oss-20b at u: stream cut"))
    left, right = columns.props(state)
    assert left["alias"] == "phi-4-mini" and left["status"] == "done" and left["text"] == "Final text [1]."
    assert (left["ttft_ms"], left["total_ms"], left["tokens"], left["tok_s"], left["cost"], left["estimated"]) == (150.0, 1750.0, 24, 14.4, 0.002, True)
    assert right["status"] == "error" and right["error"] == "gpt-oss-20b at u: stream cut" and "ttft_ms" not in right


def test_events_for_unknown_columns_change_nothing() -> None:
    assert columns.advance({}, TokenDelta("left", "x", "text")) == {}


def test_a_finished_comparison_gives_the_same_props_as_the_live_view() -> None:
    comparison = Comparison("q", (Column("phi-4-mini", "p", "Final text [1].", "thought", None, _gen("phi-4-mini"), 0.002, (1,)),
                                  Column("gpt-oss-20b", "g", error="down")), (), {})
    left, right = columns.props(columns.finished(comparison))
    assert left["status"] == "done" and left["cited"] == [1] and left["tokens"] == 24
    assert right["status"] == "error" and right["error"] == "down"


def test_a_rate_from_too_few_tokens_is_left_out() -> None:
    short = Generation("phi-4-mini", "p", "u", "Yes.", "", 100, 3, False, 150.0, 152.0, 1000.0)
    state = columns.advance({"left": columns.ColumnState(Column("phi-4-mini", "p"))}, ModelFinished("left", short, 0.0))
    assert columns.props(state)[0]["tok_s"] is None  # the column shows a dash


def test_a_streaming_column_shows_its_first_token_time_and_stop_marks_what_had_not_finished() -> None:
    """Issue 26: while streaming the columns showed "–" for first token when the steps already showed it,
    and after stop both said "streaming…" for good."""
    state: columns.Columns = {}
    state = columns.advance(state, ModelStarted("left", "phi-4-mini", "p", "u"), now=10.0)
    state = columns.advance(state, ModelStarted("right", "gpt-oss-20b", "g", "u"), now=10.0)
    state = columns.advance(state, TokenDelta("left", "phi-4-mini", "Port "), now=10.25)
    state = columns.advance(state, TokenDelta("left", "phi-4-mini", "11434"), now=10.5)
    left, right = columns.props(state)
    assert (left["ttft_ms"], left["tokens"], left["estimated"], left["status"]) == (250.0, 2, True, "streaming")
    assert "ttft_ms" not in right and right["status"] == "waiting"
    state = columns.advance(state, ModelFinished("right", _gen("gpt-oss-20b"), 0.001), now=11.0)
    left, right = columns.props(columns.stopped(state))
    assert (left["status"], left["text"], left["ttft_ms"]) == ("stopped", "Port 11434", 250.0)
    assert right["status"] == "done" and right["ttft_ms"] == 150.0  # a finished column keeps its own figures


def test_a_column_renders_safe_markdown_with_its_citations_linked() -> None:
    """The columns showed raw Markdown ("**foundry model run phi-4-mini**") and dead [n]: now each column
    carries its text made safe (nothing loads) with [n] linked to the sources list, as a single answer."""
    state: columns.Columns = {}
    for event in (ModelStarted("left", "phi-4-mini", "p", "u"),
                  TokenDelta("left", "phi-4-mini", "Run **foundry model run phi-4-mini** [1] ![x](http://evil/x.png) [7]")):
        state = columns.advance(state, event)
    (left,) = columns.props(state, "source-m1", 5)
    assert "**foundry model run phi-4-mini** [\\[1\\]](#source-m1-1)" in left["markdown"]
    assert "![" not in left["markdown"] and "image not loaded" in left["markdown"]
    assert "[7]" in left["markdown"] and "#source-m1-7" not in left["markdown"]  # no source 7: left as written
    assert left["text"].startswith("Run **foundry")  # the raw text stays for what reads it (export, copy)
