"""A conversation's title in the sidebar, from its first question (issue 26).

Chainlit names a conversation after its first message, whatever it is: a `/paste` of 829 characters
became the whole title (and the README says pasted text stays in the chat), a chat that only ran `/docs`
became "Untitled Conversation". Here a command names nothing (the next real question does), pasted
text is named by the question asked about it, and a long question is cut at a word.
"""

from __future__ import annotations

import re

from rag.chat.paste import PASTE_MIN_CHARS, split_pasted

MAX_TITLE_CHARS = 80
# Commands that ask nothing: a chat that ran only these is not a conversation yet.
QUIET_COMMANDS = frozenset({"docs", "stats", "export", "chart"})


def conversation_title(content: str, command: str | None = None) -> str | None:
    """The title a first message gives its conversation, or None when it names nothing (a command, an
    empty message)."""
    text = content.strip()
    first, _, rest = text.partition(" ") if text.startswith("/") else ("", "", text)
    typed = first[1:].lower() if first else None
    command = (command or typed or "").lower() or None
    if typed is not None and command == typed:
        text = rest.strip()
    if command in QUIET_COMMANDS:
        return None
    if command == "paste" or len(text) >= PASTE_MIN_CHARS:
        pasted = split_pasted(text, always=True)
        if pasted is None:
            return None
        if pasted.question:
            return "Pasted text: " + _cut(pasted.question, MAX_TITLE_CHARS - len("Pasted text: "))
        return f"Pasted text ({len(pasted.text):,} characters)"
    return _cut(text, MAX_TITLE_CHARS) or None


def _cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word with an ellipsis."""
    line = re.sub(r"\s+", " ", text).strip()
    if len(line) <= limit:
        return line
    head = line[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head).rstrip(" ,;:.") + "…"
