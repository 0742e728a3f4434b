"""Separate a reasoning model's thinking from its answer while the text streams.

Servers deliver gpt-oss reasoning in three ways (FACTS.md):
- a separate delta field (`delta.reasoning`, `delta.reasoning_content`): handled by the client;
- harmony channels inside `content` (Foundry Local):
  `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>`;
- the same with the special tokens stripped: `analysis…assistantfinal…`.
Qwen3 and DeepSeek-R1-style models put theirs in `content` between `<think>` and `</think>` (llama.cpp
without a reasoning format, LM Studio, Foundry Local's qwen3); DeepSeek-R1 distills often start thinking
without the opening tag, because their chat template already wrote it into the prompt.

`ReasoningSplitter.feed()` takes content deltas as they arrive (tags may be split across deltas) and
returns the pieces it can already classify; text that might be the start of a tag is held back until the
next delta or `finish()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["answer", "reasoning"]

_TAGS = ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>", "<|constrain|>")
_STRIPPED_REASONING = "analysis"
_STRIPPED_FINAL = "assistantfinal"
_LONGEST_TAG = max(len(t) for t in _TAGS)
_THINK, _UNTHINK = "<think>", "</think>"


@dataclass(frozen=True)
class Piece:
    """A classified run of streamed text."""

    kind: Kind
    text: str


class ReasoningSplitter:
    """Streaming classifier of `content` text into answer and reasoning.

    `harmony` says the model is known to speak harmony (gpt-oss): only then is the tag-stripped form
    (`analysis…assistantfinal…`) recognised, since an ordinary answer may well begin with "analysis".
    The tagged form is recognised for any model.
    """

    def __init__(self, harmony: bool = False, implicit_think: bool = False) -> None:
        self._harmony = harmony
        # The model may think without writing <think> first: its text is reasoning until </think>, and
        # held back until then, because a reply with no </think> at all is the answer.
        self._implicit_think = implicit_think
        self._mode: Literal["undecided", "plain", "tagged", "stripped", "think"] = "undecided"
        self._thinking = False  # think: between <think> (or the start, when implicit) and </think>
        self._answering = False  # think: answer text has begun after </think>
        self._buffer = ""
        self._channel: str | None = None  # tagged: current channel; None while reading a header
        self._in_header = False
        self._header = ""
        self._in_final = False  # stripped: past "assistantfinal"
        self.saw_final = False  # a final channel was opened (tagged or stripped form)

    @property
    def format(self) -> str | None:
        """How reasoning was embedded in the content, once known: 'harmony tags' or 'harmony (tags stripped)'."""
        return {"tagged": "harmony tags", "stripped": "harmony (tags stripped)", "think": "think tags"}.get(self._mode)

    @property
    def structured(self) -> bool:
        """True once the content was recognised as structured (harmony, or <think> tags)."""
        return self._mode in ("tagged", "stripped") or (self._mode == "think" and not self._implicit_think) or self.saw_final

    def feed(self, text: str) -> list[Piece]:
        """Classify what can be classified of the text seen so far."""
        self._buffer += text
        if self._mode == "undecided":
            self._decide()
            if self._mode == "undecided":
                return []
        if self._mode == "plain":
            out, self._buffer = self._buffer, ""
            return [Piece("answer", out)] if out else []
        if self._mode == "tagged":
            return self._feed_tagged(final=False)
        if self._mode == "think":
            return self._feed_think(final=False)
        return self._feed_stripped(final=False)

    def finish(self) -> list[Piece]:
        """Flush everything held back at the end of the stream."""
        if self._mode == "undecided":
            self._mode = "plain"
        if self._mode == "plain":
            out, self._buffer = self._buffer, ""
            return [Piece("answer", out)] if out else []
        if self._mode == "tagged":
            return self._feed_tagged(final=True)
        if self._mode == "think":
            return self._feed_think(final=True)
        return self._feed_stripped(final=True)

    # --- deciding the format ------------------------------------------------------------------------

    def _decide(self) -> None:
        head = self._buffer.lstrip()
        if not head:
            return
        if head.startswith(_THINK):
            self._mode, self._thinking, self._implicit_think = "think", True, False
            self._buffer = head[len(_THINK) :]
        elif _THINK.startswith(head):
            return  # "<thi" could still become "<think>"
        elif self._implicit_think:
            self._mode, self._thinking = "think", True
        elif head.startswith(("<|channel|>", "<|start|>")):
            self._mode = "tagged"
            self._buffer = head
        elif any(t.startswith(head) for t in ("<|channel|>", "<|start|>")):
            return  # could still become a tag
        elif self._harmony and head.startswith(_STRIPPED_REASONING):
            self._mode = "stripped"
            self._buffer = head[len(_STRIPPED_REASONING) :]
        elif self._harmony and _STRIPPED_REASONING.startswith(head):
            return  # "analy" could still become "analysis"
        else:
            self._mode = "plain"

    # --- tagged harmony -------------------------------------------------------------------------------

    def _feed_tagged(self, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        while self._buffer:
            start = self._buffer.find("<|")
            if start == -1:
                hold = 1 if not final and self._buffer.endswith("<") else 0  # "<" may become "<|"
                self._emit(self._buffer[: len(self._buffer) - hold], pieces)
                self._buffer = self._buffer[len(self._buffer) - hold :]
                break
            if start > 0:
                self._emit(self._buffer[:start], pieces)
                self._buffer = self._buffer[start:]
            tag = next((t for t in _TAGS if self._buffer.startswith(t)), None)
            if tag is None:
                if not final and len(self._buffer) < _LONGEST_TAG and any(t.startswith(self._buffer) for t in _TAGS):
                    break  # a tag split across deltas: wait for the rest
                self._emit(self._buffer[:2], pieces)  # "<|" that is not a tag is text
                self._buffer = self._buffer[2:]
                continue
            self._buffer = self._buffer[len(tag) :]
            self._on_tag(tag)
        return pieces

    def _on_tag(self, tag: str) -> None:
        if tag == "<|start|>" or (tag == "<|channel|>" and not self._in_header):
            self._header = ""
            self._in_header = True
            self._channel = None
        elif tag == "<|channel|>":
            self._header += " "  # "<|start|>assistant<|channel|>final": keep the words apart
        elif tag == "<|message|>":
            self._channel = _channel_of(self._header)
            self._in_header = False
            if self._channel == "final":
                self.saw_final = True
        elif tag in ("<|end|>", "<|return|>", "<|call|>"):
            self._channel = None
            self._in_header = False
        # <|constrain|> only qualifies a header; nothing to do

    def _emit(self, text: str, pieces: list[Piece]) -> None:
        if not text:
            return
        if self._in_header:
            self._header += text
            return
        if self._channel is None:
            return  # stray text between messages carries no meaning
        kind: Kind = "answer" if self._channel == "final" else "reasoning"
        if pieces and pieces[-1].kind == kind:
            pieces[-1] = Piece(kind, pieces[-1].text + text)
        else:
            pieces.append(Piece(kind, text))

    # --- tag-stripped harmony ---------------------------------------------------------------------

    def _feed_stripped(self, final: bool) -> list[Piece]:
        if self._in_final:
            out, self._buffer = self._buffer, ""
            return [Piece("answer", out)] if out else []
        marker = self._buffer.find(_STRIPPED_FINAL)
        if marker != -1:
            reasoning, answer = self._buffer[:marker], self._buffer[marker + len(_STRIPPED_FINAL) :]
            self._in_final = True
            self.saw_final = True
            self._buffer = ""
            pieces = [Piece("reasoning", reasoning)] if reasoning else []
            return pieces + ([Piece("answer", answer)] if answer else [])
        keep = 0 if final else _partial_suffix(self._buffer, _STRIPPED_FINAL)
        out = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return [Piece("reasoning", out)] if out else []


    # --- <think> tags ----------------------------------------------------------------------------------

    def _feed_think(self, final: bool) -> list[Piece]:
        if not self._thinking:
            out, self._buffer = self._buffer, ""
            if not self._answering:  # the blank lines after </think> are not part of the answer
                out = out.lstrip()
                self._answering = bool(out)
            return [Piece("answer", out)] if out else []
        end = self._buffer.find(_UNTHINK)
        if end != -1:
            reasoning, answer = self._buffer[:end], self._buffer[end + len(_UNTHINK) :].lstrip()
            self._thinking, self.saw_final, self._buffer = False, True, ""
            self._answering = bool(answer)
            pieces = [Piece("reasoning", reasoning)] if reasoning.strip() else []
            return pieces + ([Piece("answer", answer)] if answer else [])
        if self._implicit_think:
            if final:  # never closed: the model did not think, all of it is the answer
                out, self._buffer, self._thinking = self._buffer, "", False
                return [Piece("answer", out)] if out else []
            return []
        keep = 0 if final else _partial_suffix(self._buffer, _UNTHINK)
        out = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return [Piece("reasoning", out)] if out else []


def _channel_of(header: str) -> str:
    """'assistant' / 'analysis' / 'final' / 'commentary to=…' headers -> the channel name."""
    words = header.replace("<|constrain|>", " ").split()
    for name in ("final", "analysis", "commentary"):
        if name in words:
            return name
    return words[-1] if words else "analysis"


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0
