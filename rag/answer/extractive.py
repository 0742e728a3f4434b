"""The embedded default answerer: when no model server answers, quote the most relevant sentences.

It is clearly labelled as an extract, never presented as a generated answer, and cites its sources with
the same [n] numbers the sources list shows.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from rag.index.analysis import Analyzer
from rag.types import Passage

LABEL = "**Extract from the documents** (no model answered, so these are the most relevant sentences, quoted):"

# A sentence ends at ".", "!" or "?" before a space and what is not a lowercase word or a number, or at
# the end of a line without them (a command, a list item): "http://127.0.0.1:5273/v1", "llama.cpp" and
# "e.g. 5273" stay whole.
# It starts at a letter, not inside a run of dots, and a run is read once (possessive): "." x 20,000 took
# 6.7 s, quadratic, as each dot started a new try.
_SENTENCE = re.compile(r"[^.!?\n](?:[^.!?\n]|[.!?]++(?=[^\s.!?]|[ \t]++[a-z0-9]))*+(?:[.!?]+|$)", re.MULTILINE)
_MARKUP = re.compile(r"^[#>\-*\s`|]+|`")


def extract_answer(question_terms: Collection[str], passages: tuple[Passage, ...] | list[Passage], analyzer: Analyzer,
                   max_sentences: int = 3) -> str:
    """The best-matching sentences of the passages, each followed by its citation, under a clear label.
    `question_terms`: the question as retrieval analysed it."""
    wanted = set(question_terms)
    scored: list[tuple[float, int, int, str]] = []
    for number, passage in enumerate(passages, start=1):
        for position, match in enumerate(_SENTENCE.finditer(passage.chunk.text)):
            if match.group(0).lstrip().startswith("#"):
                continue  # a heading names a part; it says nothing to quote
            sentence = _MARKUP.sub("", match.group(0)).strip()
            if len(sentence) < 12:
                continue
            terms = set(analyzer.terms(sentence))
            overlap = len(wanted & terms)
            if overlap == 0:
                continue
            # Favour sentences covering more of the question, from better-ranked passages, earlier on.
            score = overlap / max(len(wanted), 1) + passage.score / 100 - position / 1000
            scored.append((score, number, position, sentence))
    if not scored:
        return f"{LABEL}\n\nNo sentence in the documents matches this question."
    best = sorted(scored, key=lambda item: -item[0])[:max_sentences]
    best.sort(key=lambda item: (item[1], item[2]))  # reading order
    quotes = "\n".join(f"> {sentence} [{number}]" for _, number, _, sentence in best)
    return f"{LABEL}\n\n{quotes}"
