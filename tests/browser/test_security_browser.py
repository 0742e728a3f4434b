"""Model output and other origins are untrusted: in the real app, in Chromium."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.browser.conftest import Stack
from tests.browser.test_chat_browser import ask

pytestmark = pytest.mark.browser


def test_an_image_planted_in_an_answer_is_never_fetched(page, stack: Stack) -> None:
    probe = f"http://127.0.0.1:{stack.fake.port}/_probe/leak.png?d=secret"
    stack.fake.script(**{"phi-4-mini": {"content": [
        "Ollama uses port 11434 [1]. !", f"[chart]({probe}) ", f"<img src=\"{probe}&html=1\"> and ",
        f"[ref]: {probe}&ref=1\n\n![x][ref] as the guide says [1]."], "delay_between": 0.05}})
    text = ask(page, "Which port does Ollama use?")
    page.wait_for_load_state("networkidle", timeout=15_000)  # any image the page would load has been asked for
    assert stack.fake.log()["probes"] == []
    assert "[image not loaded: chart]" in text and probe in text  # shown, with where it points
    assert page.locator(".step[data-step-type=assistant_message] img[src*='_probe']").count() == 0


def _get(url: str, origin: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_only_the_apps_own_origin_may_call_it(stack: Stack) -> None:
    status, headers = _get(f"{stack.app_url}/project/settings?language=en-US", "http://evil.example")
    assert "access-control-allow-origin" not in {k.lower() for k in headers}  # no credentialed cross-site reads
    handshake = f"{stack.app_url}/ws/socket.io/?EIO=4&transport=polling"
    assert _get(handshake, "http://evil.example")[0] == 400  # no chat session opened from another site
    assert _get(handshake, stack.app_url)[0] == 200  # the app's own pages connect as before


def test_a_message_over_the_limit_is_stopped_with_a_reason_and_the_chat_goes_on(page, stack: Stack) -> None:
    # Issue 21, finding 4: a 1 MB message closed the socket (Socket.IO's 1,000,000-byte buffer), silently.
    requests_before = stack.fake.log()["requests"]
    page.fill("#chat-input", "All work and no play. " * 48000)  # 1,056,000 characters
    page.wait_for_selector("#chat-submit:not([disabled])", timeout=30_000)
    page.click("#chat-submit")
    notice = page.wait_for_selector("#message-too-long", timeout=10_000)
    assert "1,056,000 characters long" in notice.inner_text() and "at most 200,000" in notice.inner_text()
    assert "Attach a longer text as a file" in notice.inner_text()
    page.keyboard.press("Enter")  # Enter is stopped the same way
    assert stack.fake.log()["requests"] == requests_before
    page.fill("#chat-input", "")
    assert page.locator("#message-too-long").count() == 0  # gone once the text fits
    text = ask(page, "Which port does Ollama use?")  # the connection is alive: the next question is answered
    assert "11434" in text
