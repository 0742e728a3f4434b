"""Citations in an answer: the [n], [n, m] and [n-m] marks that point at the prompt's numbered sources."""

from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d{1,2})(?:\s*[,\-–]\s*\d{1,2})*\]")


def cited_sources(answer: str, available: int) -> tuple[int, ...]:
    """The source numbers cited as [n] (or [n, m], [n-m]) that exist among 1..available, in order."""
    found: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in re.findall(r"\d{1,2}", match.group(0)):
            n = int(number)
            if 1 <= n <= available and n not in found:
                found.append(n)
    return tuple(found)
