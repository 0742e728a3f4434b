"""The live feed side by side streams its columns through (rag.ui.live): the latest props, then "end"."""

from __future__ import annotations

import asyncio
import json

from rag.ui.live import Feeds


async def test_a_feed_streams_its_latest_props_then_ends() -> None:
    feeds = Feeds()
    feed = feeds.open()
    assert len(feed.token) >= 20 and feeds.get(feed.token) is feed
    feed.publish({"columns": [{"text": "a"}]})
    received: list[str] = []

    async def read() -> None:
        async for event in feeds.events(feed.token):
            received.append(event)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    feed.publish({"columns": [{"text": "ab"}]})
    feed.publish({"columns": [{"text": "abc"}]})  # a slow reader skips to the latest
    await asyncio.sleep(0.01)
    feeds.close(feed)
    await asyncio.wait_for(reader, 1)
    data = [json.loads(e.removeprefix("data: ")) for e in received if e.startswith("data: ") and e != "data: {}\n\n"]
    assert data[0] == {"columns": [{"text": "a"}]} and data[-1] == {"columns": [{"text": "abc"}]}
    assert received[-1].startswith("event: end") and feeds.get(feed.token) is None


async def test_an_unknown_or_expired_token_ends_at_once() -> None:
    feeds = Feeds()
    assert [e async for e in feeds.events("no-such-token")] == ["event: end\ndata: {}\n\n"]
    feed = feeds.open()
    feed.opened -= Feeds.TTL_S + 1  # an answer that never ended
    assert feeds.get(feed.token) is None and feed.closed


async def test_an_idle_feed_sends_a_heartbeat_comment() -> None:
    feeds = Feeds()
    feed = feeds.open()
    stream = feeds.events(feed.token, heartbeat_s=0.01)
    assert (await anext(stream)).startswith("data: ")
    assert await anext(stream) == ": still here\n\n"
    feeds.close(feed)
    assert (await anext(stream)).startswith("event: end")


async def test_the_last_props_published_before_closing_still_go_out() -> None:
    feeds = Feeds()
    feed = feeds.open()
    stream = feeds.events(feed.token)
    assert json.loads((await anext(stream)).removeprefix("data: ")) == {}
    feed.publish({"c": 2})  # the final flush, then closed at once
    feeds.close(feed)
    assert json.loads((await anext(stream)).removeprefix("data: ")) == {"c": 2}
    assert (await anext(stream)).startswith("event: end")


async def test_a_feed_opened_for_a_token_made_earlier_and_told_when_a_version_reached_the_page() -> None:
    feeds = Feeds()
    token = Feeds.new_token()  # side by side's next columns go on the page before their answer starts
    assert feeds.get(token) is None
    feed = feeds.open(token)
    assert feeds.get(token) is feed
    feed.publish({"c": 1})
    assert not await feed.reached(feed.version, 0.02)  # no page has read it: the wait ends at its timeout
    stream = feeds.events(token)
    waiting = asyncio.create_task(feed.reached(feed.version, 1.0))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert json.loads((await anext(stream)).removeprefix("data: ")) == {"c": 1}
    assert not waiting.done()  # handed to the page, not yet written: the stream resumes once it is
    feed.publish({"c": 2})
    await anext(stream)
    assert await asyncio.wait_for(waiting, 1) and feed.delivered == 1
    feeds.close(feed)
    assert await feed.reached(feed.version, 1.0) is False  # closed: nobody waits for a page that is gone
