"""Thumbs up and down on answers, summarised per mode and per model for /stats.

Each answer message carries `{"rag": {"mode": ..., "model": ...}}` in its metadata; Chainlit's data layer
stores the user's thumbs (1 up, 0 down) against the message. This turns those pairs into the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def answer_metadata(mode: str, model: str) -> dict[str, Any]:
    """What an answer message records so its feedback can be grouped."""
    return {"rag": {"mode": mode, "model": model}}


def _group(rows: Iterable[tuple[int, Mapping[str, Any]]], key: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for value, metadata in rows:
        info = metadata.get("rag")
        if isinstance(info, Mapping) and isinstance(info.get(key), str):
            groups[info[key]].append(1 if value else 0)
    return dict(groups)


def thumbs_markdown(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    """The share of thumbs-up per mode and per model over `rows` (value, answer metadata)."""
    if not rows:
        return "**Feedback**: no answers rated yet (the thumbs under an answer)."
    lines = [f"**Feedback** on {len(rows)} rated answer{'s' if len(rows) != 1 else ''} (all your conversations):", ""]
    for key, title in (("mode", "mode"), ("model", "model")):
        groups = _group(rows, key)
        if not groups:
            continue
        lines += [f"| {title} | rated | rated helpful |", "|---|---:|---:|"]
        for name, values in sorted(groups.items()):
            lines.append(f"| {name} | {len(values)} | {sum(values) / len(values):.0%} |")
        lines.append("")
    return "\n".join(lines).rstrip()
