"""The error hierarchy. Library code raises these; only app.py and the CLI turn them into user text."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(RagError):
    """A setting is invalid; the message names the environment variable."""


class CorpusError(RagError):
    """The corpus folder cannot be read as a whole (missing, not a directory, unreadable)."""


class UnsupportedDocument(RagError):
    """One document cannot be used; `reason` is the specific, user-facing why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelError(RagError):
    """A model call failed. Carries which model and endpoint, why, and any answer text already streamed."""

    def __init__(self, model: str, endpoint: str, reason: str, partial: str = "") -> None:
        super().__init__(f"{model} at {endpoint}: {reason}")
        self.model = model
        self.endpoint = endpoint
        self.reason = reason
        self.partial = partial


class ModelUnavailable(ModelError):
    """The server cannot be reached, or does not serve this model."""


class ModelTimeout(ModelError):
    """No first token, or no further token, within the configured time."""


class StreamInterrupted(ModelError):
    """The stream broke after it had started: the partial answer is incomplete."""


class NoFinalAnswer(ModelError):
    """A reasoning model spent its output on reasoning and produced no final answer."""


class SearchUnavailable(RagError):
    """The search server (RAG_ENGINE=opensearch) cannot be reached or refused a request. The folder is
    untouched: what changed meanwhile is indexed once it is back."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"search is unreachable at {where}: {reason}")
        self.where = where
        self.reason = reason
