"""The streaming client against a real loopback server speaking real SSE."""

import asyncio
import socket
from collections.abc import Iterator

import pytest

from rag.errors import ModelError, ModelTimeout, ModelUnavailable, NoFinalAnswer, StreamInterrupted
from rag.llm.client import ModelDelta, OpenAICompatibleModel, Timeouts
from rag.llm.tokens import get_tokenizer
from rag.types import Generation
from rag.fakes.openai_server import FakeOpenAIServer, Reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which port?"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(["phi-4-mini", "gpt-oss-20b"]) as fake:
        yield fake


def _model(server: FakeOpenAIServer, alias: str = "phi-4-mini", **timeouts: float) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(alias, alias, server.url, None, get_tokenizer(), Timeouts(**{"connect": 2, "first_token": 5, "idle": 5, **timeouts}))


async def _collect(model: OpenAICompatibleModel, max_tokens: int = 64, logprobs: bool = True) -> tuple[list[ModelDelta], Generation]:
    deltas: list[ModelDelta] = []
    generation = None
    async for item in model.stream(MESSAGES, max_tokens, 0.2, logprobs):
        if isinstance(item, Generation):
            generation = item
        else:
            deltas.append(item)
    assert generation is not None
    return deltas, generation


async def test_plain_streaming_with_usage(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["Port ", "11434 ", "[1]."], delay_between=0.02)
    deltas, gen = await _collect(_model(server))
    assert [d.text for d in deltas] == ["Port ", "11434 ", "[1]."]
    assert gen.text == "Port 11434 [1]." and gen.reasoning == ""
    assert (gen.completion_tokens, gen.usage_estimated) == (3, False)
    assert gen.first_token_ms > 0 and gen.last_token_ms >= gen.first_token_ms + 30
    assert gen.tokens_per_s > 0
    body = server.requests[-1]
    assert body["model"] == "phi-4-mini" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 64 and body["logprobs"] is True and body["top_logprobs"] == 1
    assert body["messages"] == MESSAGES


async def test_missing_usage_is_counted_with_tiktoken_and_marked_estimated(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["Ollama listens on port 11434 [1]."], usage=False)
    _, gen = await _collect(_model(server))
    assert gen.usage_estimated is True
    assert gen.completion_tokens == get_tokenizer().count("Ollama listens on port 11434 [1].")
    assert gen.prompt_tokens > 0


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_fields_are_kept_out_of_the_answer(server: FakeOpenAIServer, field: str) -> None:
    server.replies["gpt-oss-20b"] = Reply(reasoning=["Let me think. ", "Sources say 11434."], reasoning_field=field,
                                          content=["Port 11434 [1]."])
    deltas, gen = await _collect(_model(server, "gpt-oss-20b"))
    assert gen.text == "Port 11434 [1]." and gen.reasoning == "Let me think. Sources say 11434."
    assert [d.kind for d in deltas] == ["reasoning", "reasoning", "answer"]


async def test_harmony_channels_in_content_split_across_chunks(server: FakeOpenAIServer) -> None:
    text = ("<|channel|>analysis<|message|>Reasoning here.<|end|><|start|>assistant<|channel|>final"
            "<|message|>The port is 11434 [1].<|return|>")
    server.replies["gpt-oss-20b"] = Reply(content=[text[i : i + 7] for i in range(0, len(text), 7)])
    deltas, gen = await _collect(_model(server, "gpt-oss-20b"))
    assert gen.text == "The port is 11434 [1]."
    assert gen.reasoning == "Reasoning here."
    assert "<|" not in "".join(d.text for d in deltas if d.kind == "answer")


async def test_tag_stripped_harmony(server: FakeOpenAIServer) -> None:
    server.replies["gpt-oss-20b"] = Reply(content=["analysisThinking", " about it.assistant", "finalPort 11434 [1]."])
    _, gen = await _collect(_model(server, "gpt-oss-20b"))
    assert (gen.text, gen.reasoning) == ("Port 11434 [1].", "Thinking about it.")


async def test_gpt_oss_without_a_final_channel_is_a_failed_answer(server: FakeOpenAIServer) -> None:
    server.replies["gpt-oss-20b"] = Reply(content=["<|channel|>analysis<|message|>Thinking", " and thinking"], finish_reason="length")
    with pytest.raises(NoFinalAnswer, match="no final answer.*RAG_LARGE_MAX_TOKENS"):
        await _collect(_model(server, "gpt-oss-20b"))


async def test_logprobs_are_averaged(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["a ", "b ", "c [1]"], logprobs=[-0.5, -1.0, -1.5])
    _, gen = await _collect(_model(server))
    assert gen.mean_logprob == pytest.approx(-1.0)


async def test_no_logprobs_means_none(server: FakeOpenAIServer) -> None:
    _, gen = await _collect(_model(server))
    assert gen.mean_logprob is None


async def test_server_refusing_logprobs_is_asked_again_without(server: FakeOpenAIServer) -> None:
    calls = []

    def reply(body: dict) -> Reply:
        calls.append("logprobs" in body and "top_logprobs" in body)
        return Reply(status=400, error="unsupported parameter: logprobs") if "logprobs" in body else Reply()

    server.replies["phi-4-mini"] = reply
    model = _model(server)
    _, gen = await _collect(model)
    assert gen.text and calls == [True, False]
    await _collect(model)
    assert calls == [True, False, False]  # remembered


async def test_model_not_loaded(server: FakeOpenAIServer) -> None:
    model = OpenAICompatibleModel("phi-4-mini", "Phi-4-mini-instruct-cuda-gpu:4", server.url, None, get_tokenizer())
    with pytest.raises(ModelUnavailable) as info:
        await _collect(model)
    assert "model not loaded" in info.value.reason and "No OpenAIService provider" in info.value.reason
    assert info.value.endpoint == server.url and "Phi-4-mini-instruct-cuda-gpu:4" in str(info.value)


async def test_http_500_is_retried_once_then_reported(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(status=500, error="boom")
    with pytest.raises(ModelError, match="HTTP 500: boom"):
        await _collect(_model(server))
    assert len(server.requests) == 2


async def test_http_500_then_success(server: FakeOpenAIServer) -> None:
    replies = iter([Reply(status=500), Reply(content=["fine [1]"])])
    server.replies["phi-4-mini"] = lambda body: next(replies)
    _, gen = await _collect(_model(server))
    assert gen.text == "fine [1]"


async def test_no_first_token_before_the_timeout(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(delay_first=2.0)
    with pytest.raises(ModelTimeout, match="no first token within 0.3 s .RAG_FIRST_TOKEN_TIMEOUT_S"):
        await _collect(_model(server, first_token=0.3))


async def test_stall_between_tokens(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["one ", "two"], delay_between=2.0)
    with pytest.raises(StreamInterrupted, match="stream stalled within 0.3 s") as info:
        await _collect(_model(server, idle=0.3))
    assert info.value.partial == "one "


async def test_connection_cut_mid_stream(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "listens ", "on ", "11434"], cut_after=2)
    with pytest.raises(StreamInterrupted, match="stream cut after") as info:
        await _collect(_model(server))
    assert info.value.partial == "Ollama listens "
    assert len(server.requests) == 1  # never retried once text was shown


async def test_server_down() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAICompatibleModel("phi-4-mini", "phi-4-mini", f"http://127.0.0.1:{port}/v1", None, get_tokenizer(), Timeouts(connect=1))
    with pytest.raises(ModelUnavailable, match="cannot connect"):
        await _collect(model)


async def test_cancelling_closes_the_stream_promptly(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=[f"t{i} " for i in range(200)], delay_between=0.05)
    model = _model(server)
    seen: list[str] = []

    async def consume() -> None:
        async for item in model.stream(MESSAGES, 64, 0.2):
            if isinstance(item, ModelDelta):
                seen.append(item.text)

    task = asyncio.create_task(consume())
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2)
    assert 3 <= len(seen) < 50


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(reasoning=["hm"], reasoning_field="reasoning", content=["ok [1]"]), "delta.reasoning"),
        (Reply(reasoning=["hm"], reasoning_field="reasoning_content", content=["ok [1]"]), "delta.reasoning_content"),
        (Reply(content=["<|channel|>analysis<|message|>hm<|end|><|start|>assistant<|channel|>final<|message|>ok"]), "harmony tags"),
        (Reply(content=["analysishmassistantfinalok"]), "harmony (tags stripped)"),
        (Reply(content=["ok [1]"]), None),
    ],
)
async def test_reasoning_format_is_reported(server: FakeOpenAIServer, reply: Reply, expected: str | None) -> None:
    server.replies["gpt-oss-20b"] = reply
    _, gen = await _collect(_model(server, "gpt-oss-20b"))
    assert gen.reasoning_format == expected


async def test_error_event_inside_the_stream_is_reported_as_such(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "listens ", "on"], error_after=2, error="out of memory")
    with pytest.raises(StreamInterrupted, match="the server reported an error in the stream: out of memory") as info:
        await _collect(_model(server))
    assert info.value.partial == "Ollama listens "
    assert len(server.requests) == 1  # text was shown: never retried

    server.replies["phi-4-mini"] = Reply(content=["x"], error_after=0, error="model crashed")
    with pytest.raises(ModelError, match="reported an error in the stream: model crashed"):
        await _collect(_model(server))


async def test_invalid_json_in_the_stream_is_a_model_error_with_the_partial_text(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "listens ", "on"], raw_after=2)
    with pytest.raises(StreamInterrupted, match="malformed data in the stream") as info:
        await _collect(_model(server))
    assert info.value.partial == "Ollama listens "
    server.replies["phi-4-mini"] = Reply(content=["x"], raw_after=0, raw='{"choices": "not a list"}')
    with pytest.raises(ModelError, match="malformed chunk"):
        await _collect(_model(server))


async def test_chunks_without_text_do_not_keep_a_stalled_stream_alive(server: FakeOpenAIServer) -> None:
    # Empty `choices` every 0.2 s for 10 s: only text counts as progress, so the 1 s idle limit ends it.
    server.replies["phi-4-mini"] = Reply(content=["Ollama ", "listens"], keepalive=50, delay_between=0.2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(StreamInterrupted, match="stream stalled within 1 s") as info:
        await _collect(_model(server, idle=1.0))
    assert asyncio.get_running_loop().time() - started < 5
    assert info.value.partial == "Ollama listens"


async def test_a_generation_has_an_overall_deadline(server: FakeOpenAIServer) -> None:
    # A token every 0.2 s never trips the idle limit; the whole answer may take at most 1 s.
    server.replies["phi-4-mini"] = Reply(content=[f"w{i} " for i in range(100)], delay_between=0.2)
    with pytest.raises(StreamInterrupted, match="generation too long within 1 s .RAG_GENERATION_TIMEOUT_S") as info:
        await _collect(_model(server, idle=5, total=1.0))
    assert info.value.partial.startswith("w0 w1 ")


async def test_a_stream_that_never_ends_is_cut_far_past_max_tokens(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(content=["spam " * 50], endless=True)  # 250 characters a chunk, forever
    deltas, generation = await _collect(_model(server), max_tokens=64)
    assert generation.cut and generation.finish_reason == "length"
    assert 32 * 64 < len(generation.text) < 32 * 64 + 4096 + 300  # stopped at the cap, not at 10 MB
    assert "".join(d.text for d in deltas).strip() == generation.text


@pytest.mark.parametrize(
    ("model", "content"),
    [
        ("qwen3-8b", ["<thi", "nk>\nPorts: source 1 says 11434.\n</th", "ink>\n\n", "Port 11434 [1]."]),
        ("DeepSeek-R1-Distill-Qwen-7B", ["Ports: source 1 says 11434.", "\n</think>\n\n", "Port 11434 [1]."]),
    ],
)
async def test_think_tags_in_content_are_reasoning_never_the_answer(model: str, content: list[str]) -> None:
    with FakeOpenAIServer([model], {model: Reply(content=content)}) as fake:
        deltas, generation = await _collect(_model(fake, model))
    assert generation.text == "Port 11434 [1]." and generation.reasoning == "Ports: source 1 says 11434."
    assert generation.reasoning_format == "think tags"
    assert "".join(d.text for d in deltas if d.kind == "answer") == "Port 11434 [1]."


async def test_a_seed_is_sent_and_dropped_for_good_when_the_server_refuses_it(server: FakeOpenAIServer) -> None:
    seen = []

    def reply(body: dict) -> Reply:
        seen.append(body.get("seed"))
        return Reply(status=400, error="unrecognized request argument: seed") if "seed" in body else Reply()

    server.replies["phi-4-mini"] = reply
    model = _model(server)
    items = [i async for i in model.stream([{"role": "user", "content": "q"}], 32, 0.0, False, 7)]
    assert isinstance(items[-1], Generation) and items[-1].text and seen == [7, None]
    [i async for i in model.stream([{"role": "user", "content": "q"}], 32, 0.0, False, 7)]
    assert seen == [7, None, None]  # remembered
    server.replies["phi-4-mini"] = Reply()
    [i async for i in _model(server).stream([{"role": "user", "content": "q"}], 32, 0.0, False, 11)]
    assert server.requests[-1]["seed"] == 11 and server.requests[-1]["temperature"] == 0.0


async def test_logprobs_are_asked_for_only_when_wanted(server: FakeOpenAIServer) -> None:
    server.replies["phi-4-mini"] = Reply(logprobs=[-0.1, -0.2, -0.3])
    _, generation = await _collect(_model(server), logprobs=False)
    assert "logprobs" not in server.requests[-1] and "top_logprobs" not in server.requests[-1]
    assert generation.mean_logprob is None
    _, generation = await _collect(_model(server), logprobs=True)
    assert server.requests[-1]["logprobs"] is True and generation.mean_logprob is not None
