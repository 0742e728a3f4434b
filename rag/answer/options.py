"""The one mapping from Settings to the values the stages take, and from chat-settings values to options.

Settings are read once at the edge (app start-up, a CLI command); everything below them receives plain
frozen values built here: the parser and upload limits, the escalation policy, the per-answer options.
The chat's own choices (`ChatChoices`) are clamped to the same `BOUNDS` the Settings class enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rag.config import BOUNDS, Settings
from rag.documents.library import UploadLimits
from rag.policy.decisions import Policy
from rag.documents.parsing import MB, ParseLimits
from rag.types import Generation, Kind, Mode

MODES: dict[str, str] = {
    "auto": "Auto: phi-4-mini, escalating to gpt-oss-20b",
    "small": "phi-4-mini only",
    "large": "gpt-oss-20b only",
    "compare": "Side by side",
}


@dataclass(frozen=True)
class Price:
    """Hypothetical cloud prices of one model, USD per million tokens."""

    prompt: float = 0.0
    completion: float = 0.0

    def cost(self, generation: Generation) -> float:
        """USD for one generation."""
        return (generation.prompt_tokens * self.prompt + generation.completion_tokens * self.completion) / 1_000_000


@dataclass(frozen=True)
class Prices:
    """The price of each model role."""

    small: Price = field(default_factory=Price)
    large: Price = field(default_factory=Price)

    def of(self, kind: Kind) -> Price:
        """The price of the small or large model."""
        return self.small if kind == "small" else self.large


@dataclass(frozen=True)
class AnswerOptions:
    """Per-answer knobs (chat settings can change them between messages)."""

    mode: Mode = "auto"
    top_k: int = 5
    temperature: float = 0.2
    small_max_tokens: int = 512
    large_max_tokens: int = 2048
    context_tokens: int = 6000
    history_turns: int = 3
    policy: Policy = field(default_factory=Policy)
    prices: Prices = field(default_factory=Prices)
    seed: int | None = None  # fixed sampling seed (rag eval), sent where the server takes one

    def cost(self, kind: Kind, generation: Generation) -> float:
        """Estimated USD for one generation at the configured (hypothetical) prices."""
        return self.prices.of(kind).cost(generation)

    def max_tokens(self, kind: Kind) -> int:
        """The completion budget of the small or large model."""
        return self.small_max_tokens if kind == "small" else self.large_max_tokens


def parse_limits(settings: Settings) -> ParseLimits:
    """The parser limits the settings ask for."""
    return ParseLimits(
        max_bytes=int(settings.max_file_mb * MB),
        max_uncompressed_bytes=int(settings.max_uncompressed_mb * MB),
        max_pages=settings.max_pages,
    )


def upload_limits(settings: Settings) -> UploadLimits:
    """The upload limits the settings ask for."""
    return UploadLimits(
        max_file_bytes=int(settings.max_file_mb * MB),
        max_files=settings.max_upload_files,
        max_corpus_bytes=int(settings.max_corpus_mb * MB),
    )


def policy(settings: Settings) -> Policy:
    """The escalation thresholds the settings ask for."""
    return Policy(
        min_answer_tokens=settings.min_answer_tokens,
        min_support=settings.min_support,
        min_top_score=settings.min_top_score,
        skip_draft_support=settings.skip_draft_support,
        min_mean_logprob=settings.min_mean_logprob,
        off_topic_support=settings.off_topic_support,
        off_topic=settings.off_topic,
        min_draft_support=settings.min_draft_support,
    )


def answer_options(settings: Settings) -> AnswerOptions:
    """The per-answer options the settings describe."""
    return AnswerOptions(
        mode=settings.mode,
        top_k=settings.top_k,
        temperature=settings.temperature,
        small_max_tokens=settings.small_max_tokens,
        large_max_tokens=settings.large_max_tokens,
        context_tokens=settings.context_tokens,
        history_turns=settings.history_turns,
        policy=policy(settings),
        prices=Prices(
            Price(settings.small_price_in, settings.small_price_out),
            Price(settings.large_price_in, settings.large_price_out),
        ),
    )


@dataclass(frozen=True)
class ChatChoices:
    """What a chat session chose in its settings panel: a plain value, persisted with the conversation.

    `mode` is one of `MODES` ("compare" runs both models side by side). Numbers are always within `BOUNDS`.
    """

    mode: str = "auto"
    temperature: float = 0.2
    top_k: int = 5
    small_max_tokens: int = 512
    large_max_tokens: int = 2048
    min_answer_tokens: int = 12
    min_support: float = 0.4
    skip_draft_support: float = 0.15

    @classmethod
    def of(cls, options: AnswerOptions) -> ChatChoices:
        """The choices that reproduce `options` (the start of every chat)."""
        p = options.policy
        return cls(options.mode, options.temperature, options.top_k, options.small_max_tokens,
                   options.large_max_tokens, p.min_answer_tokens, p.min_support, p.skip_draft_support)

    @property
    def side_by_side(self) -> bool:
        """Both models answer each question, in two columns."""
        return self.mode == "compare"

    def changes(self, before: ChatChoices) -> str | None:
        """What changed since `before`, in words for the chat, or None when nothing did (issue 26: after
        changing the mode nothing confirmed it)."""
        names = {"temperature": "temperature", "top_k": "passages per answer", "small_max_tokens": "phi-4-mini max tokens",
                 "large_max_tokens": "gpt-oss-20b max tokens", "min_answer_tokens": "escalate drafts shorter than",
                 "min_support": "escalate below support", "skip_draft_support": "skip the draft below support"}
        parts = []
        if self.mode != before.mode:
            parts.append(f"mode **{MODES.get(self.mode, self.mode)}** (was {MODES.get(before.mode, before.mode)})")
        for key, label in names.items():
            now, was = getattr(self, key), getattr(before, key)
            if now != was:
                parts.append(f"{label} **{now:g}** (was {was:g})")
        return "Settings for this chat, from the next question: " + "; ".join(parts) + "." if parts else None

    def updated(self, values: Mapping[str, Any]) -> ChatChoices:
        """These choices with the chat-settings `values` applied.

        Unknown keys are ignored, an unknown mode keeps the current one, and numbers are clamped to
        `BOUNDS` (non-numbers keep the current value), so a stale or tampered payload never produces an
        invalid request.
        """
        current = asdict(self)
        mode = str(values.get("mode", self.mode))
        current["mode"] = mode if mode in MODES else self.mode
        for name, bound in BOUNDS.items():
            if name not in values:
                continue
            try:
                number = min(max(float(values[name]), bound.low), bound.high)
            except (TypeError, ValueError):
                continue
            if number != number:  # NaN
                continue
            current[name] = int(round(number)) if isinstance(current[name], int) else number
        return ChatChoices(**current)

    def options(self, base: AnswerOptions) -> AnswerOptions:
        """The options for the next answer: `base` (from Settings) with these choices applied."""
        return replace(
            base,
            mode=base.mode if self.side_by_side else self.mode,  # type: ignore[arg-type]
            temperature=self.temperature,
            top_k=self.top_k,
            small_max_tokens=self.small_max_tokens,
            large_max_tokens=self.large_max_tokens,
            policy=replace(base.policy, min_answer_tokens=self.min_answer_tokens, min_support=self.min_support,
                           skip_draft_support=self.skip_draft_support),
        )
