import asyncio

from rag.chat.batching import TokenBatcher


async def test_tokens_are_flushed_in_batches_and_nothing_is_lost() -> None:
    flushed: list[str] = []

    async def flush(text: str) -> None:
        flushed.append(text)

    batcher = TokenBatcher(flush, interval=0.05)
    for i in range(200):
        batcher.add(f"t{i} ")
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    await batcher.close()
    assert "".join(flushed) == "".join(f"t{i} " for i in range(200))
    assert len(flushed) < 30  # batched: far fewer events than tokens


async def test_a_lone_token_is_flushed_by_the_timer_without_close() -> None:
    flushed: list[str] = []

    async def flush(text: str) -> None:
        flushed.append(text)

    batcher = TokenBatcher(flush, interval=0.02)
    batcher.add("hello")
    for _ in range(1000):  # the timer's flush, however loaded the machine (close() would flush too)
        if flushed:
            break
        await asyncio.sleep(0.01)
    assert flushed == ["hello"]
    await batcher.close()


async def test_discard_drops_pending_text() -> None:
    flushed: list[str] = []

    async def flush(text: str) -> None:
        flushed.append(text)

    batcher = TokenBatcher(flush, interval=10)
    batcher.add("draft")
    batcher.discard()
    await batcher.close()
    assert flushed == []


async def test_the_interval_grows_with_the_text_already_flushed() -> None:
    async def flush(text: str) -> None:
        pass

    batcher = TokenBatcher(flush, interval=0.04, per_char=0.00001)
    assert batcher.current_interval == 0.04
    batcher.add("x" * 10_000)
    await batcher.drain()
    assert abs(batcher.current_interval - 0.14) < 1e-9
    await batcher.close()
