"""Untrusted text (file names, headings, reasons quoting them) printed to a terminal.

A file name is whatever its author chose: a newline forges a row of a table, an ANSI escape recolours or
clears the screen, a right-to-left override shows `invoice\u202etxt.md` as `invoicedm.txt`. Every such
character is shown as a visible escape instead, so what the terminal prints is what the name is.
"""

from __future__ import annotations

import unicodedata

_VISIBLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: str) -> str:
    """`text` with every control, format (bidirectional, zero-width) and line or paragraph separator
    written as an escape: \\n, \\t, \\x1b, \\u202e, ... Spaces of any width are kept."""
    if text.isprintable():  # the common case; isprintable() is False for every character escaped below
        return text
    out = []
    for char in text:
        if char.isprintable() or unicodedata.category(char) == "Zs":
            out.append(char)
        elif char in _VISIBLE:
            out.append(_VISIBLE[char])
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)
