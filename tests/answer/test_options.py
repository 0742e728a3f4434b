"""One mapping from settings to values, and one table of bounds that settings and chat widgets share."""

import pytest
from pydantic import ValidationError

from rag.config import BOUNDS, Settings
from rag.answer.options import ChatChoices, answer_options, parse_limits, policy, upload_limits


def test_every_bound_is_the_settings_own_range(settings: Settings) -> None:
    for name, bound in BOUNDS.items():
        metadata = {type(m).__name__: m for m in Settings.model_fields[name].metadata}
        assert (metadata["Ge"].ge, metadata["Le"].le) == (bound.low, bound.high), name
        with pytest.raises(ValidationError):
            Settings(**{"corpus_dir": settings.corpus_dir, name: bound.high + 1}, _env_file=None)  # type: ignore[arg-type]


def test_every_chat_choice_has_a_bound_and_the_defaults_agree(settings: Settings) -> None:
    choices = ChatChoices.of(answer_options(settings))
    numeric = {k for k in ChatChoices.__dataclass_fields__ if k != "mode"}
    assert numeric == set(BOUNDS)
    assert choices == ChatChoices()  # the dataclass defaults are the settings' defaults


def test_settings_become_values_in_one_place(corpus_dir: object) -> None:
    settings = Settings(corpus_dir=corpus_dir, max_file_mb=2, max_upload_files=3, max_corpus_mb=10, min_support=0.4,
                        small_price_in=1.0, small_price_out=2.0, mode="large", top_k=9, _env_file=None)
    assert parse_limits(settings).max_bytes == upload_limits(settings).max_file_bytes == 2 * 2**20
    assert (upload_limits(settings).max_files, upload_limits(settings).max_corpus_bytes) == (3, 10 * 2**20)
    assert policy(settings).min_support == 0.4
    options = answer_options(settings)
    assert (options.mode, options.top_k, options.policy) == ("large", 9, policy(settings))
    assert (options.prices.small.prompt, options.prices.small.completion) == (1.0, 2.0)


def test_clamping_uses_the_bounds() -> None:
    choices = ChatChoices().updated({"top_k": 0, "large_max_tokens": 10**9, "min_support": float("nan"), "temperature": None})
    assert choices.top_k == BOUNDS["top_k"].low and choices.large_max_tokens == BOUNDS["large_max_tokens"].high
    assert choices.min_support == ChatChoices().min_support and choices.temperature == ChatChoices().temperature


def test_a_change_of_settings_is_said_in_words() -> None:
    from rag.answer.options import ChatChoices

    before = ChatChoices()
    after = before.updated({"mode": "compare", "temperature": 0.7})
    assert after.changes(before) == ("Settings for this chat, from the next question: mode **Side by side** (was "
                                      "Auto: phi-4-mini, escalating to gpt-oss-20b); temperature **0.7** (was 0.2).")
    assert before.changes(before) is None
