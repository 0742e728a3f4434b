"""What a model is doing right now, in words: the live status line and step titles of a running answer.

A slow model must never look hung: while it reads the prompt or reasons, the chat shows for how long and
how much it has produced; step titles go from waiting, to first-token time and a running token count, to
the final figures. Pure functions of a `Progress` value and the time, so they are tested on a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.types import Generation, ReasoningDelta, TokenDelta
from rag.units import count, format_ms

# A decode rate from fewer tokens or a shorter span is noise (5 tokens in 2 ms reads "2500 tok/s").
MIN_RATE_TOKENS = 20
MIN_RATE_MS = 500.0


@dataclass(frozen=True)
class Progress:
    """One model request as seen from the chat: when it started, first text, pieces of text so far."""

    alias: str
    started: float  # seconds, the chat's monotonic clock
    first_text: float | None = None
    answer_pieces: int = 0
    reasoning_pieces: int = 0

    @property
    def pieces(self) -> int:
        """Streamed pieces of text so far (about one token each)."""
        return self.answer_pieces + self.reasoning_pieces


def begin(alias: str, now: float) -> Progress:
    """A request just sent."""
    return Progress(alias, now)


def advance(progress: Progress, event: TokenDelta | ReasoningDelta, now: float) -> Progress:
    """After a piece of answer or reasoning text."""
    first = progress.first_text if progress.first_text is not None else now
    if isinstance(event, TokenDelta):
        return replace(progress, first_text=first, answer_pieces=progress.answer_pieces + 1)
    return replace(progress, first_text=first, reasoning_pieces=progress.reasoning_pieces + 1)


def status_line(progress: Progress, now: float) -> str:
    """What the model is doing, for the answer bubble while no answer text has arrived."""
    elapsed = f"{max(now - progress.started, 0):.0f} s"
    if progress.reasoning_pieces:
        return f"{progress.alias} is reasoning · {elapsed} · {count(progress.reasoning_pieces, 'token')}"
    return f"{progress.alias} is reading the question and sources · {elapsed}"


def live_title(progress: Progress, now: float) -> str:
    """The model step's title while it runs."""
    if progress.first_text is None:
        return f"{progress.alias} · waiting for first token · {max(now - progress.started, 0):.0f} s"
    first = format_ms((progress.first_text - progress.started) * 1000)
    return f"{progress.alias} · first token {first} · {count(progress.pieces, 'token')}"


def rate(generation: Generation) -> float | None:
    """The decode rate, or None when too few tokens or too short a span make it meaningless."""
    if generation.completion_tokens < MIN_RATE_TOKENS or generation.generation_ms < MIN_RATE_MS:
        return None
    return generation.tokens_per_s


def format_rate(value: float | None) -> str:
    """'42 tok/s', or '– tok/s' when there is no meaningful rate."""
    return "– tok/s" if value is None else f"{value:.0f} tok/s"


def final_title(generation: Generation) -> str:
    """The model step's title once it is done."""
    return (f"{generation.alias} · first token {format_ms(generation.first_token_ms)} · "
            f"{count(generation.completion_tokens, 'token')} · {format_rate(rate(generation))}")
