"""How numbers read in the chat and the CLI: one formatter per unit, so every screen says the same."""

from __future__ import annotations


def format_ms(ms: float) -> str:
    """'840 ms' below a second, '1.2 s' above."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def count(n: int, noun: str) -> str:
    """'1 chunk', '3 chunks'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_size(n_bytes: int) -> str:
    """'240 B', '1.5 KB', '2.0 MB': never '0 KB' for a small file."""
    size = float(n_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def percents(value: float, threshold: float) -> tuple[str, str]:
    """A value and the threshold it is compared with, as percentages that differ when the values do:
    "2.6%" and "3%" rather than "3%, below the threshold 3%"."""
    for digits in (0, 1, 2):
        shown = f"{value:.{digits}%}", f"{threshold:.{digits}%}"
        if shown[0] != shown[1] or value == threshold:
            return shown
    return f"{value:.2%}", f"{threshold:.2%}"
