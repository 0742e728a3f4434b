"""Frozen value types shared across stages: documents, chunks, passages and retrieval signals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

DocumentStatus = Literal["ok", "skipped"]
Mode = Literal["auto", "small", "large"]  # which model answers (side by side is not a mode of the pipeline)
Kind = Literal["small", "large"]  # the two model roles
Clock = Callable[[], float]  # monotonic seconds; injectable so tests assert exact milliseconds


@dataclass(frozen=True)
class Section:
    """A span of a document's extracted text under one heading or on one page."""

    start: int
    end: int
    heading: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """The text a parser extracted, with the sections that give chunks their provenance.

    For Markdown and plain text `text` is the file's own decoded text, so character spans point into the
    file; for PDF, DOCX and HTML they point into the extracted text.
    """

    text: str
    sections: tuple[Section, ...]
    title: str
    kind: str
    pages: int | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, with everything needed to cite it."""

    source: str  # path relative to the corpus folder, with forward slashes
    index: int  # position of this chunk within its document
    text: str
    start: int  # character span in the document's (extracted) text
    end: int
    title: str
    heading: str | None = None
    page: int | None = None
    n_tokens: int = 0

    @property
    def location(self) -> str:
        """Human-readable provenance: 'file.md › Heading' or 'file.pdf › page 3'."""
        where = self.heading if self.heading else (f"page {self.page}" if self.page else None)
        return f"{self.source} › {where}" if where else self.source


@dataclass(frozen=True)
class DocumentInfo:
    """What `rag corpus list` and `/docs` show about one file of the corpus."""

    source: str
    kind: str
    size_bytes: int
    chunks: int
    status: DocumentStatus
    reason: str | None = None
    pages: int | None = None
    modified: float = 0.0  # mtime, seconds since the epoch
    content_hash: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its BM25 score and rank (1-based)."""

    chunk: Chunk
    score: float
    rank: int


@dataclass(frozen=True)
class SupportSignals:
    """How well the corpus supports a query: what the escalation policy reads from retrieval.

    `coverage` is the share of distinct analysed query terms present in the top passage;
    `weighted_coverage` weighs each term by its idf, so question words found everywhere ("which", "does")
    count little and a rare term the corpus lacks counts most. `margin` is the top score minus the second;
    `relative_margin` is that margin divided by the top score.

    `support` is what the policy reads: the estimated probability that the corpus answers the question,
    from a model over the scale-free predictors that follow it (`rag.index.support`, fitted by `rag calibrate`).
    """

    top_score: float
    second_score: float
    margin: float
    relative_margin: float
    coverage: float
    weighted_coverage: float
    query_terms: int
    matched_terms: tuple[str, ...] = ()
    support: float = 0.0
    max_score: float = 0.0  # the highest score the question could reach in this corpus
    normalized_top: float = 0.0
    nqc: float = 0.0
    wig: float = 0.0
    skew: float = 0.0
    known_share: float = 0.0  # idf-weighted share of the question's terms found anywhere in the corpus
    typicality: float = 0.0  # 1 - mean idf of the question's words / idf of an unseen word
    # The estimated probability that the question is about this corpus at all (answerable vs everyday
    # questions only, from a corpus calibration); None: the same as `support` (the shipped model).
    on_topic: float | None = None

    @property
    def topical(self) -> float:
        """What the off-topic threshold reads: `on_topic` when calibrated on this corpus, else `support`."""
        return self.support if self.on_topic is None else self.on_topic

    @classmethod
    def empty(cls, query_terms: int = 0) -> SupportSignals:
        """Signals for a query nothing matched: no support."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, query_terms, ())


@dataclass(frozen=True)
class SearchResult:
    """The passages for one query, best first, and the support signals."""

    query: str
    passages: tuple[Passage, ...]
    signals: SupportSignals
    analysed_terms: tuple[str, ...] = field(default=())
    calibration: str = ""  # which support model gave `signals.support` (the corpus's own, or the shipped prior)


# --- model generation and pipeline events -----------------------------------------------------------

Role = Literal["draft", "final", "left", "right"]  # left/right: the two columns of a side-by-side comparison


@dataclass(frozen=True)
class Generation:
    """One completed model request, measured by the client.

    Times are milliseconds from the request being sent. `tokens_per_s` is the decode rate:
    (completion tokens − 1) / (last token − first token); prompt tokens are never counted in it.
    """

    alias: str
    model_id: str
    endpoint: str
    text: str
    reasoning: str
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    first_token_ms: float
    last_token_ms: float
    tokens_per_s: float
    mean_logprob: float | None = None
    finish_reason: str | None = None
    reasoning_format: str | None = None  # "delta.reasoning", "delta.reasoning_content", "harmony tags", ...
    cut: bool = False  # the app stopped reading: the server sent far more than max_tokens

    @property
    def incomplete(self) -> str | None:
        """Why the text is not the model's whole answer, or None when the model finished.

        A stream that ends with no finish reason was cut (a server that died and closed the connection
        cleanly looks exactly like that); "length" means the model hit max_tokens mid-answer.
        """
        if self.cut:
            return "the server kept sending far past the tokens asked for, and the rest was not read"
        if self.finish_reason is None:
            return "the stream ended before the model finished (no finish reason: the connection was closed)"
        if self.finish_reason == "length":
            return "the model reached its token limit mid-answer"
        return None

    @property
    def generation_ms(self) -> float:
        """Time from the first token to the last."""
        return max(self.last_token_ms - self.first_token_ms, 0.0)


@dataclass(frozen=True)
class StageFinished:
    """A pipeline stage ended: `name` is 'retrieve', 'build prompt', 'escalate', ..."""

    name: str
    ms: float
    detail: str = ""


@dataclass(frozen=True)
class Retrieved:
    """Retrieval finished; `query` is the question searched, `earlier` the previous question searched with
    it at a lower weight when it is a follow-up ("" when not)."""

    result: SearchResult
    query: str
    ms: float
    chosen: bool = False  # the user chose the documents (attached or pasted): support is not judged
    earlier: str = ""


@dataclass(frozen=True)
class ModelStarted:
    """A model request is about to be sent."""

    role: Role
    alias: str
    model_id: str
    endpoint: str


@dataclass(frozen=True)
class TokenDelta:
    """Answer text from a model, as it streams."""

    role: Role
    alias: str
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """Reasoning text from a model, as it streams; never part of the answer."""

    role: Role
    alias: str
    text: str


@dataclass(frozen=True)
class ModelFinished:
    """A model request completed."""

    role: Role
    generation: Generation
    cost_usd: float
    cited: tuple[int, ...] = ()  # the sources its answer cites, read once when it finished


@dataclass(frozen=True)
class ModelFailed:
    """A model request failed; `message` says which model and endpoint, and why."""

    role: Role
    alias: str
    message: str
    partial_text: str = ""
    reason: str = ""  # the why alone, without the model and endpoint ("no first token within 3 s")


@dataclass(frozen=True)
class EscalationDecided:
    """The policy's verdict. `before_draft` means the draft was skipped."""

    escalate: bool
    reasons: tuple[str, ...]
    target: str
    before_draft: bool
    ms: float
    applied: bool = True  # False in 'small' mode: the verdict is shown but not acted upon


@dataclass(frozen=True)
class SourceRef:
    """A source as cited in an answer: [number] -> passage."""

    number: int
    passage: Passage


@dataclass(frozen=True)
class Answer:
    """The final result of one question (what `rag ask --json` prints)."""

    text: str
    model: str  # alias of the model whose answer this is, or 'extractive'
    model_id: str
    backend: str  # endpoint URL, or 'embedded'
    mode: str
    escalated: bool
    reasons: tuple[str, ...]
    sources: tuple[SourceRef, ...]
    cited: tuple[int, ...]
    timings_ms: Mapping[str, float]  # read-only (a MappingProxyType); dict() it to serialise
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    cost_usd: float
    draft: str | None = None
    reasoning: str = ""
    note: str | None = None  # e.g. why an escalation did not improve the draft
    runs: tuple[ModelFinished, ...] = ()  # every model request that completed, in order
    grounded: bool = True  # False: the documents do not cover the question (refused, or general knowledge)


@dataclass(frozen=True)
class Column:
    """One model's side of a comparison: its answer or its error, and its measurements."""

    alias: str
    model_id: str
    text: str = ""
    reasoning: str = ""
    error: str | None = None
    generation: Generation | None = None
    cost_usd: float = 0.0
    cited: tuple[int, ...] = ()
    note: str | None = None  # e.g. the answer is incomplete (the stream ended before the model finished)


@dataclass(frozen=True)
class Comparison:
    """Both models on the same question and the same sources; the last event of a comparison."""

    question: str
    columns: tuple[Column, ...]
    sources: tuple[SourceRef, ...]
    timings_ms: Mapping[str, float]


PipelineEvent = (
    Retrieved | StageFinished | ModelStarted | TokenDelta | ReasoningDelta | ModelFinished | ModelFailed
    | EscalationDecided | Answer | Comparison
)
