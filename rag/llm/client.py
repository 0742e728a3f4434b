"""Streaming chat client for any OpenAI-compatible server, with per-request measurements.

One request yields `ModelDelta`s as text arrives and ends with a `Generation` (usage, timings, logprobs).
Failures are typed (`rag.errors`) and say which model and endpoint failed and why. Retries happen only
before the first token: once text has been shown, a retry would show it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI, OpenAIError, Timeout
from openai.types.chat import ChatCompletionMessageParam
from pydantic import SecretStr

from rag.errors import ModelError, ModelTimeout, ModelUnavailable, NoFinalAnswer, StreamInterrupted
from rag.llm.reasoning import ReasoningSplitter
from rag.llm.tokens import Tokenizer
from rag.types import Generation

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class ModelDelta:
    """A piece of streamed text: answer or reasoning."""

    kind: Literal["answer", "reasoning"]
    text: str


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `first_token` runs from sending the request; `idle` between two pieces of text (chunks
    that carry no text, such as keep-alives or empty `choices`, do not count as progress); `total` bounds
    the whole generation, however steadily it trickles."""

    connect: float = 3.0
    first_token: float = 180.0
    idle: float = 60.0
    total: float = 1800.0


# A stream is read to at most this many times the requested tokens (in text pieces, and characters at a
# generous 32 per token): servers have been seen ignoring max_tokens, and a server that never stops must
# not fill memory. Past it the answer is kept, marked as cut, and the connection closed.
_OVERRUN_FACTOR = 2
_CHARS_PER_TOKEN = 32


class ChatModel(Protocol):
    """What the pipeline needs of a model: stream a chat completion."""

    alias: str
    model_id: str
    endpoint: str

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float, logprobs: bool = False,
        seed: int | None = None,
    ) -> AsyncIterator[ModelDelta | Generation]:
        """Yield deltas as they arrive, then one Generation; `logprobs` asks for token log-probabilities,
        `seed` for reproducible sampling where the server takes one."""
        ...


class OpenAICompatibleModel:
    """A model on an OpenAI-compatible server (Foundry Local, Ollama, vLLM, llama.cpp, LM Studio)."""

    def __init__(
        self,
        alias: str,
        model_id: str,
        endpoint: str,
        api_key: SecretStr | None,
        tokenizer: Tokenizer,
        timeouts: Timeouts = Timeouts(),
        clock: Clock = time.perf_counter,
        retries: int = 1,
        request_logprobs: bool = True,
    ) -> None:
        self.alias = alias
        self.model_id = model_id
        self.endpoint = endpoint
        self._tokenizer = tokenizer
        self._timeouts = timeouts
        self._clock = clock
        self._retries = retries
        self._logprobs = request_logprobs  # switched off for good if the server refuses the parameter
        self._seed = True  # likewise for `seed`
        self._harmony = "gpt-oss" in f"{alias} {model_id}".lower()
        # DeepSeek-R1 distills and QwQ begin thinking without "<think>": their template wrote it already.
        self._implicit_think = any(name in f"{alias} {model_id}".lower() for name in ("deepseek-r1", "r1-distill", "qwq"))
        self._client = AsyncOpenAI(
            base_url=endpoint,
            api_key=(api_key.get_secret_value() if api_key is not None else "") or "not-needed",
            max_retries=0,  # we retry ourselves, and only before the first token
            timeout=Timeout(timeouts.first_token, connect=timeouts.connect),
        )

    async def aclose(self) -> None:
        """Release the HTTP connection pool."""
        await self._client.close()

    def warm(self) -> None:
        """Import what the first request would (the SDK loads its chat resources and streaming types on
        first use: ~60 ms, paid by the first question of the app's life otherwise). Sends nothing."""
        from openai import AsyncStream  # noqa: F401 - imported for its side effect: loaded now
        from openai.types.chat import ChatCompletionChunk  # noqa: F401

        _ = self._client.chat.completions

    async def complete(self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float) -> Generation:
        """One chat completion without streaming (for benchmarks that compare both ways).

        The whole answer arrives at once, so the first "token" is the last: `first_token_ms` equals the
        total time and the decode rate is completion tokens over the whole request.
        """
        sent = self._clock()
        try:
            response = await self._client.chat.completions.create(
                model=self.model_id, messages=cast(list[ChatCompletionMessageParam], list(messages)),
                max_tokens=max_tokens, temperature=temperature, stream=False)
        except APIStatusError as exc:
            raise self._status_error(exc, retry=False) from exc
        except APITimeoutError as exc:
            raise self._timeout("no response", self._timeouts.first_token) from exc
        except APIConnectionError as exc:
            raise self._error(ModelUnavailable, f"cannot connect ({_cause(exc)})") from exc
        elapsed = (self._clock() - sent) * 1000
        splitter = ReasoningSplitter(self._harmony, self._implicit_think)
        choice = response.choices[0] if response.choices else None
        content = (choice.message.content or "") if choice else ""
        pieces = splitter.feed(content) + splitter.finish()
        extra = (choice.message.model_extra or {}) if choice else {}
        reasoning = str(extra.get("reasoning") or extra.get("reasoning_content") or "") + "".join(
            p.text for p in pieces if p.kind == "reasoning")
        answer = "".join(p.text for p in pieces if p.kind == "answer").strip()
        if not answer:
            raise self._error(NoFinalAnswer if reasoning else ModelError,
                              "gave no final answer" if reasoning else "returned an empty answer")
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else self._estimated_prompt_tokens(messages)
        completion_tokens = usage.completion_tokens if usage else self._tokenizer.count(answer)
        return Generation(self.alias, self.model_id, self.endpoint, answer, reasoning.strip(), prompt_tokens,
                          completion_tokens, usage is None, elapsed, elapsed,
                          completion_tokens / (elapsed / 1000) if elapsed > 0 else 0.0,
                          finish_reason=choice.finish_reason if choice else None)

    async def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float, logprobs: bool = False,
        seed: int | None = None,
    ) -> AsyncIterator[ModelDelta | Generation]:
        """Stream one chat completion; see the module docstring for the guarantees.

        Log-probabilities are asked for only with `logprobs` (the escalation policy reads them of a draft):
        llama-cpp-python streams 4x slower when it computes them (BENCHMARKS.md).
        """
        attempt = 0
        while True:
            state = _StreamState(self._clock(), ReasoningSplitter(self._harmony, self._implicit_think))
            try:
                async for item in self._attempt(messages, max_tokens, temperature, state, logprobs, seed):
                    yield item
                return
            except _Retry as retry:
                attempt += 1
                if attempt > self._retries:
                    raise retry.error from retry.__cause__
                log.info("retrying %s after: %s", self.alias, retry.error.reason)
                await asyncio.sleep(0.2 * attempt)

    async def _attempt(
        self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float, state: _StreamState,
        logprobs: bool, seed: int | None = None,
    ) -> AsyncIterator[ModelDelta | Generation]:
        request: dict[str, Any] = {
            "model": self.model_id,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if logprobs and self._logprobs:
            # llama-cpp-python streams logprobs only when top_logprobs is set too (seen with 0.3.36).
            request["logprobs"] = True
            request["top_logprobs"] = 1
        if seed is not None and self._seed:
            request["seed"] = seed
        try:
            stream = await asyncio.wait_for(
                self._client.chat.completions.create(**request), timeout=self._timeouts.first_token
            )
        except asyncio.TimeoutError as exc:
            raise self._timeout("no response", self._timeouts.first_token) from exc
        except APIStatusError as exc:
            if logprobs and self._logprobs and exc.status_code in (400, 422) and "logprob" in _error_text(exc).lower():
                self._logprobs = False  # this server does not take the parameter: ask without it
                raise _Retry(self._error(ModelError, "server refused the logprobs parameter")) from exc
            if seed is not None and self._seed and exc.status_code in (400, 422) and "seed" in _error_text(exc).lower():
                self._seed = False  # likewise: sample without a fixed seed
                raise _Retry(self._error(ModelError, "server refused the seed parameter")) from exc
            raise self._status_error(exc) from exc
        except APITimeoutError as exc:
            raise self._timeout("no response", self._timeouts.first_token) from exc
        except APIConnectionError as exc:
            raise _Retry(self._error(ModelUnavailable, f"cannot connect ({_cause(exc)})")) from exc

        max_pieces = _OVERRUN_FACTOR * max_tokens + 32
        max_chars = _CHARS_PER_TOKEN * max_tokens + 4096
        try:
            iterator = stream.__aiter__()
            while True:
                now = self._clock()
                total_left = self._timeouts.total - (now - state.sent)
                if state.first_token is None:
                    wait, what = self._timeouts.first_token - (now - state.sent), "no first token"
                else:
                    wait, what = self._timeouts.idle - (now - (state.progress or now)), "stream stalled"
                if total_left < wait:
                    wait, what = total_left, "generation too long"
                try:
                    # asyncio.timeout, not wait_for: wait_for wraps every chunk in a new task, which
                    # cost ~1% of tokens/s in `rag bench overhead`.
                    async with asyncio.timeout(max(wait, 0.001)):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise self._stalled(what, state) from exc
                except ValueError as exc:  # a line of the stream is not JSON (json.JSONDecodeError)
                    kind = ModelError if state.first_token is None else StreamInterrupted
                    raise self._error(kind, f"the server sent malformed data in the stream ({exc})", state) from exc
                try:
                    items = self._consume(chunk, state)
                except (AttributeError, TypeError, KeyError) as exc:  # JSON, but not a chat completion chunk
                    kind = ModelError if state.first_token is None else StreamInterrupted
                    raise self._error(kind, f"the server sent a malformed chunk ({type(exc).__name__}: {exc})", state) from exc
                for item in items:
                    yield item
                if state.pieces > max_pieces or state.chars > max_chars:
                    state.cut = True  # closed in `finally`; the answer so far stands, marked as cut
                    log.warning("%s: stream cut after %d pieces, far past max_tokens=%d", self.alias, state.pieces, max_tokens)
                    break
        except asyncio.CancelledError:
            log.info("%s: request cancelled", self.alias)
            raise
        except APIConnectionError as exc:
            if state.first_token is None:
                raise _Retry(self._error(ModelUnavailable, f"connection lost before the first token ({_cause(exc)})")) from exc
            raise self._error(
                StreamInterrupted, f"stream cut after {state.chunks} chunks ({_cause(exc)})", state
            ) from exc
        except APIStatusError as exc:
            raise self._status_error(exc, retry=state.first_token is None) from exc
        except OpenAIError as exc:  # an "error" event inside the stream
            kind = ModelError if state.first_token is None else StreamInterrupted
            raise self._error(kind, f"the server reported an error in the stream: {exc}", state) from exc
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(stream.close())  # shielded: a cancelled task must still free the socket
        for piece in state.splitter.finish():
            yield from_piece(piece, state, self._clock)
        yield self._finish(messages, state)

    def _consume(self, chunk: Any, state: _StreamState) -> list[ModelDelta]:
        out: list[ModelDelta] = []
        state.chunks += 1
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "completion_tokens", None) is not None:
            state.usage = (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
        for choice in chunk.choices or []:
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            extra = delta.model_extra or {}
            for name in ("reasoning", "reasoning_content"):
                reasoning = extra.get(name)
                if isinstance(reasoning, str) and reasoning:
                    state.reasoning_format = f"delta.{name}"
                    out.append(from_text("reasoning", reasoning, state, self._clock))
                    state.pieces += 1
                    state.chars += len(reasoning)
                    state.progress = self._clock()
                    break
            if delta.content:
                out.extend(from_piece(p, state, self._clock) for p in state.splitter.feed(delta.content))
                state.pieces += 1
                state.chars += len(delta.content)
                state.progress = self._clock()  # held-back text (a tag split across chunks) is progress too
                if state.first_token is None:
                    state.first_token = state.progress  # held-back text still proves the model is answering
            logprobs = getattr(choice, "logprobs", None)
            for entry in getattr(logprobs, "content", None) or []:
                if entry.logprob is not None:
                    state.logprobs.append(float(entry.logprob))
        return out

    def _finish(self, messages: Sequence[dict[str, str]], state: _StreamState) -> Generation:
        answer = "".join(state.answer).strip()
        reasoning = "".join(state.reasoning).strip()
        if not answer:
            if reasoning or (state.splitter.structured and not state.splitter.saw_final):
                raise self._error(
                    NoFinalAnswer,
                    "spent its output on reasoning and gave no final answer "
                    "(raise RAG_LARGE_MAX_TOKENS to give it more room)",
                    state,
                )
            raise self._error(ModelError, "returned an empty answer", state)
        if state.usage is not None:
            prompt_tokens, completion_tokens = state.usage
            estimated = False
        else:
            prompt_tokens = self._estimated_prompt_tokens(messages)
            completion_tokens = self._tokenizer.count(answer) + (self._tokenizer.count(reasoning) if reasoning else 0)
            estimated = True
        first = (state.first_token or state.sent) - state.sent
        last = (state.last_token or state.first_token or state.sent) - state.sent
        span = last - first
        rate = (completion_tokens - 1) / span if span > 0 and completion_tokens > 1 else 0.0
        return Generation(
            alias=self.alias,
            model_id=self.model_id,
            endpoint=self.endpoint,
            text=answer,
            reasoning=reasoning,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_estimated=estimated,
            first_token_ms=first * 1000,
            last_token_ms=last * 1000,
            tokens_per_s=rate,
            mean_logprob=sum(state.logprobs) / len(state.logprobs) if state.logprobs else None,
            finish_reason="length" if state.cut else state.finish_reason,
            reasoning_format=state.reasoning_format or state.splitter.format,
            cut=state.cut,
        )

    def _estimated_prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        """Prompt tokens counted with tiktoken when the server reports no usage (4 per message for roles)."""
        return sum(self._tokenizer.count(m.get("content", "")) + 4 for m in messages)

    # --- errors ---------------------------------------------------------------------------------------

    def _error(self, kind: type[ModelError], reason: str, state: _StreamState | None = None) -> ModelError:
        name = self.alias if self.alias == self.model_id else f"{self.alias} ({self.model_id})"
        return kind(name, self.endpoint, reason, "".join(state.answer) if state is not None else "")

    def _timeout(
        self, what: str, seconds: float, kind: type[ModelError] = ModelTimeout, state: _StreamState | None = None
    ) -> ModelError:
        setting = {"stream stalled": "RAG_IDLE_TIMEOUT_S", "generation too long": "RAG_GENERATION_TIMEOUT_S"}.get(
            what, "RAG_FIRST_TOKEN_TIMEOUT_S")
        return self._error(kind, f"{what} within {seconds:g} s ({setting})", state)

    def _stalled(self, what: str, state: _StreamState) -> ModelError:
        """The error for a timeout while streaming: which limit ran out."""
        if what == "no first token":
            return self._timeout(what, self._timeouts.first_token)
        if what == "generation too long":
            kind = ModelTimeout if state.first_token is None else StreamInterrupted
            return self._timeout(what, self._timeouts.total, kind, state)
        return self._timeout(what, self._timeouts.idle, StreamInterrupted, state)

    def _status_error(self, exc: APIStatusError, retry: bool = True) -> ModelError:
        """A typed error for an HTTP status; 5xx raise _Retry instead when a retry is still allowed."""
        text = _error_text(exc)
        lowered = text.lower()
        if exc.status_code == 404 or (
            exc.status_code == 400 and ("provider found" in lowered or "not found" in lowered or "not loaded" in lowered)
        ):
            return self._error(ModelUnavailable, f"model not loaded on the server (HTTP {exc.status_code}: {text[:200]})")
        if exc.status_code in (401, 403):
            return self._error(ModelError, f"the server refused the API key (HTTP {exc.status_code}); set RAG_API_KEY")
        error = self._error(ModelError, f"HTTP {exc.status_code}: {text[:200]}")
        if exc.status_code >= 500 and retry:
            raise _Retry(error) from exc
        return error


@dataclass
class _StreamState:
    sent: float
    splitter: ReasoningSplitter
    first_token: float | None = None
    last_token: float | None = None
    chunks: int = 0
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None
    reasoning_format: str | None = None
    progress: float | None = None  # when the last text arrived (answer or reasoning)
    pieces: int = 0  # chunks that carried text
    chars: int = 0
    cut: bool = False  # stopped reading far past max_tokens

    def __post_init__(self) -> None:
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.logprobs: list[float] = []


class _Retry(Exception):
    """Internal: the attempt failed before any token; the wrapped error is raised if retries run out."""

    def __init__(self, error: ModelError) -> None:
        super().__init__(error.reason)
        self.error = error


def from_text(kind: Literal["answer", "reasoning"], text: str, state: _StreamState, clock: Clock) -> ModelDelta:
    """Record a delta's timing and text in the state."""
    now = clock()
    if state.first_token is None:
        state.first_token = now
    state.last_token = now
    (state.answer if kind == "answer" else state.reasoning).append(text)
    return ModelDelta(kind, text)


def from_piece(piece: Any, state: _StreamState, clock: Clock) -> ModelDelta:
    """A splitter piece as a recorded delta."""
    return from_text(piece.kind, piece.text, state, clock)


def _error_text(exc: APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    with contextlib.suppress(Exception):
        return exc.response.text or exc.message
    return exc.message


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause else str(exc) or type(exc).__name__
