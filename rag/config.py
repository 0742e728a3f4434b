"""All configuration: one pydantic-settings class, read once at start-up and passed down.

Every field is an environment variable `RAG_<FIELD>` (also read from `.env`). The issue that defined the
variables names them flat (`RAG_CORPUS_DIR`, `RAG_TOP_K`, ...), so fields are flat and grouped by comment
rather than nested (nesting would make them `RAG_CORPUS__DIR`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError
from rag.types import Mode

Engine = Literal["auto", "rank-bm25", "bm25s", "opensearch"]
AuthMode = Literal["local", "password"]


@dataclass(frozen=True)
class Bound:
    """The allowed range of a setting the chat can also change; `step` is the chat slider's step."""

    low: float
    high: float
    step: float


# One table for every setting a chat session may override: the Settings fields below take their ranges
# from it, the chat's sliders show exactly these ranges, and values sent by a browser are clamped to them.
BOUNDS: dict[str, Bound] = {
    "temperature": Bound(0, 2, 0.1),
    "top_k": Bound(1, 50, 1),
    "small_max_tokens": Bound(16, 32768, 16),
    "large_max_tokens": Bound(64, 65536, 64),
    "min_answer_tokens": Bound(0, 500, 1),
    "min_support": Bound(0, 1, 0.05),
    "skip_draft_support": Bound(0, 1, 0.05),
}


class Settings(BaseSettings):
    """Every setting of the app, the CLI and the benchmarks."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- corpus -----------------------------------------------------------------------------------
    corpus_dir: Path = Field(Path("docs_corpus"), description="Folder of reference documents, read recursively.")
    uploads_subdir: str = Field("uploads", description="Sub-folder of the corpus where chat uploads are saved.")
    chunk_tokens: int = Field(256, ge=32, le=8192, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(32, ge=0, le=4096, description="Tokens repeated between consecutive chunks.")
    max_file_mb: float = Field(25.0, gt=0, description="Documents larger than this are skipped.")
    max_uncompressed_mb: float = Field(200.0, gt=0, description="DOCX whose unzipped size exceeds this are refused.")
    max_pages: int = Field(2000, ge=1, description="PDFs with more pages are refused.")
    max_upload_files: int = Field(10, ge=1, le=100, description="Files accepted in one chat message.")
    max_corpus_mb: float = Field(500.0, gt=0, description="Uploads that would grow the corpus past this are refused.")
    follow_external_links: bool = Field(
        False, description="Index symbolic links whose target is outside the corpus folder (off: they are skipped)."
    )

    # --- retrieval --------------------------------------------------------------------------------
    engine: Engine = Field("auto", description="BM25 engine: auto (rank-bm25 for small corpora, bm25s above 2,000 chunks), rank-bm25, bm25s, or opensearch (a search server shared by every app process).")
    watch_interval_s: float = Field(60.0, gt=0, description="Full reconciliation of the corpus folder in the background, besides file events.")
    top_k: int = Field(5, ge=BOUNDS["top_k"].low, le=BOUNDS["top_k"].high, description="Passages given to the model.")
    bm25_k1: float = Field(1.2, gt=0, le=5, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    # Chosen on SciFact train plus the bundled question set (BENCHMARKS.md): 0.2 keeps SciFact nDCG@10 and
    # lifts hit@1 on questions users ask about the bundled documents from 0.83 to 0.96.
    title_weight: float = Field(0.2, ge=0, le=10, description="Weight of the title field (title, headings, file name).")

    # --- OpenSearch (RAG_ENGINE=opensearch) ----------------------------------------------------------
    opensearch_url: str = Field("http://127.0.0.1:9200", description="One or more nodes, comma-separated (http:// or https://).")
    opensearch_index: str = Field("rag-chunks", description="The chunk index (its manifest is <name>-documents).")
    opensearch_user: str | None = Field(None, description="User for basic authentication.")
    opensearch_password: SecretStr | None = Field(None, description="Password for basic authentication.")
    opensearch_ca_certs: Path | None = Field(None, description="CA certificate (PEM) that signed the nodes' certificates.")
    opensearch_verify_certs: bool = Field(True, description="Check the nodes' TLS certificates (leave on outside tests).")
    # One shard keeps idf and the average length the whole corpus's at no cost; with more, every search
    # runs dfs_query_then_fetch (one more round trip inside the cluster) so the scores stay the same.
    opensearch_shards: int = Field(1, ge=1, le=64, description="Primary shards of a new index.")
    opensearch_replicas: int = Field(0, ge=0, le=8, description="Replicas of each shard (1 on a cluster of 2 or more nodes).")
    opensearch_timeout_s: float = Field(10.0, gt=0, description="One request to the cluster.")

    # --- models -----------------------------------------------------------------------------------
    base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RAG_BASE_URL", "FOUNDRY_LOCAL_ENDPOINT", "base_url"),
        description="OpenAI-compatible endpoint (…/v1) for both models; discovered when unset.",
    )
    api_key: SecretStr = Field(SecretStr("not-needed"), description="API key; local servers ignore it.")
    small_model: str = Field("phi-4-mini", description="Alias or exact id of the fast model.")
    large_model: str = Field("gpt-oss-20b", description="Alias or exact id of the escalation model.")
    small_base_url: str | None = Field(None, description="Endpoint for the small model only.")
    large_base_url: str | None = Field(None, description="Endpoint for the large model only.")
    small_api_key: SecretStr | None = None
    large_api_key: SecretStr | None = None
    mode: Mode = Field("auto", description="auto (escalate when needed), small or large.")
    temperature: float = Field(0.2, ge=BOUNDS["temperature"].low, le=BOUNDS["temperature"].high)
    small_max_tokens: int = Field(512, ge=BOUNDS["small_max_tokens"].low, le=BOUNDS["small_max_tokens"].high)
    # gpt-oss spends tokens on reasoning before its final channel: give it room (FACTS.md).
    large_max_tokens: int = Field(2048, ge=BOUNDS["large_max_tokens"].low, le=BOUNDS["large_max_tokens"].high)
    connect_timeout_s: float = Field(3.0, gt=0, description="Connecting to a model server.")
    # CPU-served models take tens of seconds before the first token on long prompts (FACTS.md: 38 s
    # per phi-4-mini answer in the workshop), so the defaults are generous.
    first_token_timeout_s: float = Field(180.0, gt=0, description="Request sent to first token.")
    idle_timeout_s: float = Field(60.0, gt=0, description="Longest silence between two pieces of text.")
    # gpt-oss-20b on a CPU: ~1 tok/s (FACTS.md), so 2,048 tokens can take half an hour.
    generation_timeout_s: float = Field(1800.0, gt=0, description="Longest time for one whole model answer.")
    discovery_timeout_s: float = Field(0.5, gt=0, description="Per-port probe when looking for a server.")
    context_tokens: int = Field(6000, ge=512, description="Token budget for sources + history in a prompt.")
    history_turns: int = Field(3, ge=0, le=20, description="Recent question/answer pairs kept in the prompt.")

    # --- escalation -------------------------------------------------------------------------------
    min_answer_tokens: int = Field(12, ge=BOUNDS["min_answer_tokens"].low, le=BOUNDS["min_answer_tokens"].high, description="Drafts shorter than this escalate.")
    # Support thresholds are probabilities: the estimated chance that the documents answer the question
    # (rag/index/support.py; fitted by `rag calibrate`, measured by `rag bench support`, BENCHMARKS.md).
    min_support: float = Field(0.4, ge=BOUNDS["min_support"].low, le=BOUNDS["min_support"].high,
                               description="A draft escalates when retrieval support is below this.")
    min_top_score: float = Field(0.0, ge=0, description="Top BM25 score below this is weak support (0 = off).")
    skip_draft_support: float = Field(
        0.15, ge=BOUNDS["skip_draft_support"].low, le=BOUNDS["skip_draft_support"].high,
        description="Below this support the draft is skipped: straight to the large model.",
    )
    off_topic_support: float = Field(0.03, ge=0, le=1, description="Below this support the documents do not cover the question.")
    off_topic: Literal["refuse", "general"] = Field(
        "refuse", description="Off-topic questions: refuse (say the documents do not cover them) or general (a model "
        "answers from general knowledge, labelled 'not from your documents').",
    )
    min_draft_support: float = Field(0.5, ge=0, le=1, description="Share of a draft the passages it cites must support.")
    support_model: Path | None = Field(None, description="Coefficients from `rag calibrate --out` (default: the shipped ones).")
    min_mean_logprob: float = Field(-1.5, le=0, description="Mean token logprob below this escalates.")

    # --- history and sign-in -----------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the app keeps its own state: the history database, the sign-in secret.")
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAG_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL for history (postgresql://user:pass@host/db); SQLite in the data folder when unset.",
    )
    history: bool = Field(True, description="Keep conversations (history, resume, export, feedback).")
    auth: AuthMode = Field("local", description="local: one user, no sign-in (loopback only); password: users from `rag users add`.")
    allow_open: bool = Field(
        False, description="Serve a non-loopback host without sign-in (RAG_AUTH=local): anyone who reaches the port is the user."
    )

    # --- cost (hypothetical cloud prices, USD per million tokens, for comparison only) -----------
    small_price_in: float = Field(0.07, ge=0)
    small_price_out: float = Field(0.14, ge=0)
    large_price_in: float = Field(0.10, ge=0)
    large_price_out: float = Field(0.50, ge=0)

    @field_validator("corpus_dir")
    @classmethod
    def _corpus_dir_is_directory(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        if not value.exists():
            raise ValueError(f"directory {value} does not exist")
        return value

    @field_validator("base_url", "small_base_url", "large_base_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL of an OpenAI-compatible endpoint, e.g. http://127.0.0.1:5273/v1")
        try:
            parsed.port  # noqa: B018 - raises for a port that is not a number or out of range
        except ValueError as exc:
            raise ValueError(f"has an invalid port ({exc})") from exc
        return value.rstrip("/")

    @field_validator("opensearch_url")
    @classmethod
    def _are_http_urls(cls, value: str) -> str:
        urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("must name at least one node, e.g. http://127.0.0.1:9200")
        for url in urls:
            parsed = urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in url):
                raise ValueError(f"{url!r} is not an http:// or https:// URL of an OpenSearch node")
            try:
                parsed.port  # noqa: B018 - raises for a port that is not a number or out of range
            except ValueError as exc:
                raise ValueError(f"{url!r} has an invalid port ({exc})") from exc
        return ",".join(urls)

    @field_validator("opensearch_index")
    @classmethod
    def _is_index_name(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,200}", value) or value in (".", ".."):
            raise ValueError("must be a lower-case OpenSearch index name (letters, digits, '-', '_', '.')")
        return value

    @field_validator("database_url")
    @classmethod
    def _is_postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value().strip()).scheme
        if scheme not in ("postgres", "postgresql", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"):
            raise ValueError("must be a postgresql:// URL (or sqlite:///path/to/file.db)")
        return value

    @field_validator("uploads_subdir")
    @classmethod
    def _uploads_subdir_is_plain(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in {".", ".."}:
            raise ValueError("must be a single folder name")
        return value

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than RAG_CHUNK_TOKENS ({self.chunk_tokens})"
            )
        return self

    @property
    def uploads_dir(self) -> Path:
        """Where chat uploads are stored, inside the corpus."""
        return self.corpus_dir / self.uploads_subdir


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and `.env`; raise ConfigError naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line per invalid value, each naming its environment variable and the value given."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        message = error.get("msg", "invalid value").removeprefix("Value error, ")
        if loc:
            name = loc[0] if loc[0].startswith(("RAG_", "FOUNDRY_", "DATABASE_URL")) else f"RAG_{loc[0].upper()}"
            if name == "RAG_BASE_URL" and "RAG_BASE_URL" not in os.environ and "FOUNDRY_LOCAL_ENDPOINT" in os.environ:
                name = "FOUNDRY_LOCAL_ENDPOINT"  # the workshop's name for the same setting
            got = error.get("input")
            # A database URL may hold a password: never echoed.
            shown = f" (got {got!r})" if isinstance(got, (str, int, float)) and not name.endswith("DATABASE_URL") else ""
            lines.append(f"Invalid setting {name}: {message}{shown}")
        else:
            lines.append(f"Invalid settings: {message}")
    return "\n".join(lines)
