"""First contact, round 2 (issue 26): what a demanding new user met in the browser. Each test failed on
the code before the issue; each flow ends with the next question answered."""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlparse

import pytest

from tests.browser.conftest import Stack, attach, shot
from tests.browser.test_chat_browser import MESSAGES, ask, choose_mode, send

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def test_nothing_is_requested_from_outside_this_machine(browser, stack: Stack) -> None:
    """The README promises nothing in the cloud: every page load asked fonts.googleapis.com for a font and
    cdn.jsdelivr.net for KaTeX's stylesheet. Any request leaving loopback fails this test."""
    stack.fake.script()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []

    def watch(route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("http://", "https://", "ws://", "wss://")) and host not in LOOPBACK:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", watch)
    page = context.new_page()
    page.goto(stack.app_url)
    page.wait_for_selector("#chat-input", timeout=30_000)  # as the page fixture: a body to read first
    page.wait_for_function("() => document.body.innerText.includes('Answering from')", timeout=30_000)
    html = page.content()
    assert "fonts.googleapis.com" not in html and "cdn.jsdelivr.net" not in html  # not even a preconnect
    ask(page, "Which port does Ollama use?")
    choose_mode(page, "phi-4-mini only")
    page.reload()
    page.wait_for_selector("#chat-input", timeout=30_000)
    ask(page, "Which port does LM Studio use?")
    assert outside == []
    context.close()


def test_the_product_has_its_own_name_logo_and_avatar(page, stack: Stack) -> None:
    """Chainlit's logo and wordmark were on the first screen and the sign-in page, and its icon was the
    assistant's avatar ("Missing custom logo" in the log)."""
    for theme in ("light", "dark"):
        with urllib.request.urlopen(f"{stack.app_url}/logo?theme={theme}", timeout=10) as response:
            body = response.read().decode()
        assert response.headers["content-type"].startswith("image/svg") and "Grounded Chat" in body
    logo = page.locator("img[src*='/logo']").first
    logo.wait_for(timeout=10_000)
    assert page.evaluate("img => img.naturalWidth > 0", logo.element_handle())  # it loaded
    with urllib.request.urlopen(f"{stack.app_url}/avatars/grounded_chat", timeout=10) as response:
        assert "Grounded Chat" in response.read().decode()
    with urllib.request.urlopen(f"{stack.app_url}/favicon", timeout=10) as response:
        assert "Grounded Chat" in response.read().decode()
    ask(page, "Which port does Ollama use?")
    avatar = page.locator(MESSAGES).last.locator("img").first
    assert "/avatars/" in (avatar.get_attribute("src") or "")
    assert page.title() == "Grounded Chat"
    assert page.get_by_text("Readme", exact=True).count() == 1  # chainlit.md, the product's own guide
    shot(page, "branding")


def test_the_first_screen_says_what_the_app_does_right_under_the_starters(browser, stack: Stack) -> None:
    """The greeting sat under a gap of the screen's leftover height (Chainlit centres its welcome screen in
    the whole height), on a desktop and a phone."""
    stack.fake.script()
    for width, height in ((1280, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(stack.app_url)
        page.wait_for_function("() => document.body.innerText.includes('Answering from')", timeout=30_000)
        gap = page.evaluate("""() => {
            // the starters' bottom: the welcome screen's own box grows into the gap
            const shown = [...document.querySelector('#welcome-screen').querySelectorAll('button')];
            const bottom = Math.max(...shown.map(b => b.getBoundingClientRect().bottom));
            const greeting = [...document.querySelectorAll('.step')].find(e => e.innerText.includes('Ask about your documents'));
            return greeting.getBoundingClientRect().top - bottom;
        }""")
        assert 0 <= gap < 64, (width, gap)
        if width == 1280:
            shot(page, "first-screen")
        ask(page, "Which port does Ollama use?")  # the welcome screen goes, the chat answers
        assert page.locator("#welcome-screen").count() == 0
        context.close()


def test_stopping_side_by_side_marks_both_columns_stopped(page, stack: Stack) -> None:
    """Both columns stayed "streaming…" with "–" for every figure after stop; while streaming they showed
    "–" for first token when the steps already showed it."""
    slow = {"content": [f"slow{i} " for i in range(200)], "delay_between": 0.1}
    stack.fake.script(**{"phi-4-mini": slow, "gpt-oss-20b": slow})
    choose_mode(page, "Side by side")
    send(page, "Which port does Ollama use?")
    page.wait_for_function("() => [...document.querySelectorAll('.compare-answer')].every(e => e.innerText.includes('slow3'))"
                           " && document.querySelectorAll('.compare-answer').length === 2", timeout=20_000)
    firsts = page.evaluate("() => [...document.querySelectorAll('.compare-column')].map(c => c.innerText)")
    assert all(re.search(r"first token\s+\d+ ms", c, re.IGNORECASE) for c in firsts), firsts  # live, as in the steps
    page.click("#stop-button")
    page.wait_for_function("() => document.body.innerText.includes('(stopped)')", timeout=10_000)
    page.wait_for_function("() => [...document.querySelectorAll('.compare-column')].every(c => /\\bstopped\\b/.test(c.innerText))",
                           timeout=10_000)
    assert "streaming…" not in page.locator(".compare-column").first.inner_text()
    shot(page, "side-by-side-stopped")
    stack.fake.script()
    assert "Side by side" in ask(page, "Which port does LM Studio use?")  # the next question is answered


def test_an_opened_source_reads_as_its_document(page, stack: Stack) -> None:
    """Headings inside an opened passage rendered at page-heading size, hard-wrapped lines broke raggedly,
    and the context before a passage showed a literal "…# Troubleshooting"."""
    (stack.corpus / "wrapped-guide.md").write_text(
        "# Wrapped guide\n\n## Burrow basics\n\nAn aardvark burrow is dug at night and it is\nhard wrapped at a short"
        " width so that a renderer\nthat keeps line breaks breaks it raggedly.\n\n## Aardvark port\n\nThe aardvark"
        " service listens on port 4242 and\nthe port is set in the aardvark file, which is\nread once at start.\n")
    stack.fake.script(**{m: {"content": ["The aardvark service listens on port 4242 [1]."]} for m in ("phi-4-mini", "gpt-oss-20b")})
    page.wait_for_timeout(1500)  # the folder watcher picks the new file up (interval 1 s in tests)
    ask(page, "Which port does the aardvark service listen on?")
    answer = page.locator(MESSAGES).filter(has_text="listens on port 4242").last
    answer.get_by_role("link", name="source 1").first.click()
    source = page.locator(".source-item[open]").first
    source.wait_for(timeout=10_000)
    assert "wrapped-guide.md" in source.inner_text()
    passage = source.locator(".source-passage")
    heading = passage.locator("h1, h2, h3").first
    heading.wait_for(timeout=10_000)
    sizes = page.evaluate("([h, p]) => [parseFloat(getComputedStyle(h).fontSize), parseFloat(getComputedStyle(p).fontSize)]",
                          [heading.element_handle(), passage.element_handle()])
    assert sizes[0] <= sizes[1] * 1.05, sizes  # a heading of the passage, not a page title
    paragraph = passage.locator("[role=article]", has_text="listens on port 4242").first  # Chainlit's paragraph
    assert "\n" not in paragraph.inner_text().strip()  # one paragraph, not three ragged lines
    context = source.locator(".source-context").first
    context.wait_for(timeout=10_000)
    assert "#" not in context.inner_text()  # "## Burrow basics" is a heading, not "…## Burrow basics"
    shot(page, "source-opened")
    assert "4242" in ask(page, "And where is that port set?")


def test_the_keyboard_and_a_screen_reader_find_their_way(page, stack: Stack) -> None:
    """The settings sliders had no accessible name, a conversation's rename/delete menu could not be
    reached with the keyboard, each sidebar item was two tab stops, the user menu was read "button L"
    and citations "[1]"; the delete dialog did not say which conversation."""
    ask(page, "Which port does Ollama use?")
    page.wait_for_selector("a[href^='/thread/']", timeout=30_000)
    # Citations and the user menu have names.
    assert page.locator('a[href*="#source-"]').first.get_attribute("aria-label") == "source 1"
    # Sliders: every one named by its label.
    page.click("#chat-settings-open-modal")
    page.wait_for_selector("[role=slider]", timeout=10_000)
    names = page.evaluate("() => [...document.querySelectorAll('[role=slider]')].map(s => s.getAttribute('aria-label'))")
    assert len(names) == 7 and all(names), names
    assert "Temperature" in names
    page.keyboard.press("Escape")
    # The sidebar: one tab stop per conversation, then its options, which open from the keyboard.
    link = page.locator("a[href^='/thread/']").first
    title = link.inner_text().strip()
    assert link.locator("button").get_attribute("tabindex") == "-1"
    link.focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.id, document.activeElement.getAttribute('aria-label')]")
    assert focused == ["thread-options", f"Options for {title}"], focused
    page.keyboard.press("Enter")
    page.get_by_role("menuitem", name="Delete").wait_for(timeout=10_000)
    page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("alertdialog").or_(page.get_by_role("dialog"))
    dialog.first.wait_for(timeout=10_000)
    assert f"Delete “{title}”?" in dialog.first.inner_text()  # which conversation, by its title
    page.keyboard.press("Escape")
    assert page.get_attribute("#user-nav-button", "aria-label") == "Account menu"
    ask(page, "And LM Studio?")


def test_our_words_not_chainlits(page, stack: Stack) -> None:
    """"Tools" for the commands, "No threads found", and "Task manually stopped." after a stopped answer
    (which, as the turn's last message, also took the answer's Copy and rating)."""
    assert page.get_by_role("button", name=re.compile("^Commands")).count() >= 1
    assert page.get_by_text("Tools", exact=True).count() == 0
    stack.fake.script(**{"phi-4-mini": {"content": [f"slow{i} " for i in range(200)], "delay_between": 0.1}})
    send(page, "Which port does Ollama use?")
    page.wait_for_function("() => document.body.innerText.includes('slow3')", timeout=20_000)
    page.click("#stop-button")
    page.wait_for_function("() => document.body.innerText.includes('(stopped)')", timeout=10_000)
    page.wait_for_timeout(500)
    assert "Task manually stopped" not in page.inner_text("body")
    page.click("#search-chats-button")
    page.keyboard.type("zzzz-nothing-like-this")
    page.get_by_text("No conversations found").first.wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    stack.fake.script()
    assert "phi-4-mini" in ask(page, "Which port does LM Studio use?")


def test_a_change_of_mode_is_confirmed(page, stack: Stack) -> None:
    """After changing the mode nothing confirmed it or showed the current mode."""
    choose_mode(page, "phi-4-mini only")
    page.get_by_text(re.compile(r"from the next question: mode phi-4-mini only \(was Auto")).first.wait_for(timeout=10_000)
    assert "small mode" in ask(page, "Which port does Ollama use?")  # and it took


def test_the_command_menu_fits_and_a_command_without_text_runs_when_chosen(page, stack: Stack) -> None:
    """Typing "/" on the first screen pushed the menu's first item under the header; "/docs" + Enter only
    made a chip that waited for a second Enter. The greeting now says what the app is for."""
    greeting = page.inner_text("body")
    assert "Ask about your documents." in greeting and "type / for the other commands" in greeting.replace("`", "")
    page.click("#chat-input")
    page.keyboard.type("/")
    page.wait_for_selector("[cmdk-list] [cmdk-item]", timeout=10_000)
    first = page.locator("[cmdk-list] [cmdk-item]").first
    header_bottom = page.evaluate("() => document.getElementById('header').getBoundingClientRect().bottom")
    assert first.bounding_box()["y"] >= header_bottom, "the first command is under the header"
    last = page.locator("[cmdk-list] [cmdk-item]").last
    last.scroll_into_view_if_needed()
    assert last.bounding_box()["y"] >= header_bottom and last.is_visible()  # the list scrolls to its last one
    assert first.inner_text().startswith("docs")
    shot(page, "command-menu")
    page.keyboard.type("docs")
    page.keyboard.press("Enter")  # once
    page.wait_for_function("() => document.body.innerText.includes('modified')", timeout=20_000)  # the /docs table
    assert page.input_value("#chat-input") == ""
    # "/paste" needs its text: it stays a chip, nothing is sent.
    before = page.locator(".step").count()
    page.click("#chat-input")
    page.keyboard.type("/paste")
    page.wait_for_selector("[cmdk-list] [cmdk-item]", timeout=10_000)
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert page.locator(".step").count() == before
    page.keyboard.type("The aardvark gate opens at nine.")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.innerText.includes('Pasted')", timeout=20_000)
    assert "phi-4-mini · auto mode" in ask(page, "Which port does LM Studio use?")  # the next question is answered


def test_cited_pdf_pages_sit_in_a_row_of_small_labelled_previews(page, stack: Stack, tmp_path) -> None:
    """Three cited pages stacked, each as tall as a page, labels cut at the page number."""
    from rag.fakes.samples import make_pdf

    pdf = tmp_path / "okapi-field-guide-with-a-long-name.pdf"
    pdf.write_bytes(make_pdf(["The okapi eats leaves.", "The okapi lives in the Ituri forest.", "The okapi is shy."]))
    stack.fake.script(**{m: {"content": ["Leaves [1], the Ituri forest [2], and it is shy [3]."]}
                         for m in ("phi-4-mini", "gpt-oss-20b")})
    attach(page, [pdf])
    ask(page, "What does the guide say about the okapi?")
    answer = page.locator(".step[data-step-type=assistant_message]").last
    cards = answer.locator(".inline-pdf")
    cards.nth(2).wait_for(timeout=20_000)
    answer.locator(".inline-pdf canvas").nth(2).wait_for(timeout=20_000)  # every preview drawn, then measured
    boxes = [cards.nth(i).bounding_box() for i in range(3)]
    assert all(b["height"] < 330 for b in boxes), boxes  # small previews
    assert len({round(b["y"]) for b in boxes}) == 1, boxes  # in one row
    labels = [cards.nth(i).inner_text() for i in range(3)]
    heads = [re.sub(r"\s+", " ", t).split(" · ")[0].strip() for t in labels]
    assert [h.split(" ")[0] for h in heads] == ["[1]", "[2]", "[3]"], heads  # in the answer's order
    assert sorted(h.split(" ", 1)[1] for h in heads) == ["page 1", "page 2", "page 3"], heads
    assert all(re.search(r"okapi-field-guide-with-a-long-name-\w+\.pdf$", t.replace("\n", "").strip()) for t in labels), labels
    shot(page, "pdf-pages")
    for path in (stack.corpus / "uploads").iterdir():
        if path.name.startswith("okapi-field-guide"):
            path.unlink()
    stack.fake.script()
    assert "phi-4-mini · auto mode" in ask(page, "Which port does LM Studio use?")
