"""Numbers in words for the chat."""

from rag.units import percents


def test_a_value_and_its_threshold_never_read_the_same_unless_equal() -> None:
    assert percents(0.026, 0.03) == ("2.6%", "3.0%")  # was "3%, below the threshold 3%"
    assert percents(0.5, 0.03) == ("50%", "3%")
    assert percents(0.03, 0.03) == ("3%", "3%")
    assert percents(0.0299, 0.03) == ("2.99%", "3.00%")
