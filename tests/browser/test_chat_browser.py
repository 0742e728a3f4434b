"""End to end in Chromium: streaming, steps, sources, follow-ups, escalation, uploads, /docs, settings,
side by side, the stop button, and the model server dying mid-answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.fakes.samples import make_docx, make_pdf
from tests.browser.conftest import Stack, answer_sources, attach, shot

pytestmark = pytest.mark.browser

MESSAGES = ".step[data-step-type=assistant_message]"
FOOTER = r"(ms|s) total"


def answered(page) -> int:
    """How many assistant messages carry an answer footer."""
    return int(page.evaluate(
        "re => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]"
        ".filter(e => new RegExp(re).test(e.innerText)).length", FOOTER))


def send(page, text: str) -> None:
    page.fill("#chat-input", text)
    # Generous: a page resuming a conversation on a loaded machine (CI beside a model server) can take a while
    # to connect; a passing run never waits for the limit.
    page.wait_for_selector("#chat-submit:not([disabled])", timeout=60_000)
    page.click("#chat-submit")


def ask(page, text: str, timeout: float = 60_000) -> str:
    """Send a question and wait for its complete answer; returns the answer message's text."""
    before = answered(page)
    send(page, text)
    page.wait_for_function(
        "([re, n]) => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]"
        ".filter(e => new RegExp(re).test(e.innerText)).length > n", arg=[FOOTER, before], timeout=timeout)
    return last_answer(page)


def last_answer(page) -> str:
    texts = [m.inner_text() for m in page.query_selector_all(MESSAGES)]
    return next(t for t in reversed(texts) if re.search(FOOTER, t))


def choose_mode(page, label: str) -> None:
    page.click("#chat-settings-open-modal")
    page.wait_for_selector("#mode", timeout=10_000)
    page.click("#mode")
    page.get_by_role("option", name=label).click()
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#mode", state="detached", timeout=10_000)


def test_answer_streams_with_timed_steps_and_sources(page, stack: Stack) -> None:
    words = [f"word{i} " for i in range(30)] + ["Ollama uses port 11434 [1]."]
    stack.fake.script(**{"phi-4-mini": {"content": words, "delay_between": 0.08}})
    before = answered(page)
    send(page, "Which port does Ollama use?")
    page.wait_for_function("() => document.body.innerText.includes('word5')", timeout=20_000)
    assert answered(page) == before  # text is visible while the answer is still streaming
    page.wait_for_function("n => document.body.innerText.includes('11434 [1].')", timeout=30_000)
    page.wait_for_function("() => document.body.innerText.includes('escalation · not needed')", timeout=30_000)
    body = page.inner_text("body")
    assert re.search(r"retrieve · support \d+% · \d+ ms", body)
    assert re.search(r"build prompt · \d+ ms", body)
    assert re.search(r"phi-4-mini · first token \d+ ms · \d+ tokens · \d+ tok/s", body)
    assert "escalation · not needed" in body
    assert "phi-4-mini · auto mode" in last_answer(page)
    sources = answer_sources(page).locator(".source-item")
    assert sources.count() == 5
    first = sources.first
    assert "servers/ollama.md" in first.inner_text() and "✓" in first.inner_text()
    first.locator("summary").click()
    first.locator(".source-passage").wait_for(timeout=10_000)  # a passage renders once its row opens
    assert "Ollama serves models through an OpenAI-compatible API" in first.inner_text()
    shot(page, "answer")


def test_follow_up_question_retrieves_with_the_previous_one(page, stack: Stack) -> None:
    ask(page, "Which port does Ollama use?")
    ask(page, "and what about LM Studio?")
    page.get_by_text(re.compile(r"retrieve · support \d+% · \d+ ms")).last.click()
    page.wait_for_function("() => document.body.innerText.includes(\"query: '\")", timeout=10_000)
    body = page.inner_text("body")
    assert "query: 'and what about LM Studio?'" in body
    assert "a follow-up: searched with what it follows, at 50% weight: 'Which port does Ollama use?'" in body
    assert "servers/lm-studio.md" in answer_sources(page).inner_text()
    # A short question with a subject of its own is new: searched alone, answered about itself (issue 26).
    ask(page, "What is BM25?")
    page.get_by_text(re.compile(r"retrieve · support \d+% · \d+ ms")).last.click()
    page.wait_for_function("() => document.body.innerText.includes(\"query: 'What is BM25?'\")", timeout=10_000)
    # Only this question's own step: the earlier answer's retrieve step, opened above, may still be open.
    own_step = page.locator(".step[data-step-type=retrieval]").filter(has_text="query: 'What is BM25?'").last
    assert "a follow-up: searched with" not in own_step.inner_text(timeout=10_000)
    sources = answer_sources(page).inner_text()
    assert "retrieval-bm25.md" in sources and "servers/ollama.md" not in sources and "lm-studio" not in sources


def test_escalation_is_visible_with_its_reason(page, stack: Stack) -> None:
    stack.fake.script(**{
        "phi-4-mini": {"content": ["11434."]},
        "gpt-oss-20b": {"reasoning": ["The user asks for the port. ", "Source 1 says 11434."],
                        "content": ["Ollama's OpenAI-compatible API listens on port 11434 by default [1]."]},
    })
    text = ask(page, "Which port does Ollama use?")
    assert text.startswith("Ollama's OpenAI-compatible API listens on port 11434")
    assert "gpt-oss-20b · auto mode" in text and "escalated" in text
    assert "Source 1 says" not in text
    body = page.inner_text("body")
    assert re.search(r"escalate → gpt-oss-20b: draft too short", body)
    assert re.search(r"gpt-oss-20b · first token \d+ ms", body)
    shot(page, "escalation")


def test_upload_pdf_and_docx_then_ask_and_delete_from_docs(page, stack: Stack, tmp_path: Path) -> None:
    pdf = tmp_path / "quarterly.pdf"
    pdf.write_bytes(make_pdf(["Quarterly report: the walrus project shipped in March.", "Revenue grew 12 percent."]))
    docx = tmp_path / "travel policy.docx"
    docx.write_bytes(make_docx([("Heading 1", "Travel policy"), ("", "Employees take the train for trips under 500 km.")]))
    attach(page, [pdf, docx])
    text = ask(page, "What do the attached files say?")
    body = page.inner_text("body")
    assert "quarterly.pdf added as uploads/quarterly-" in body and "travel policy.docx added as uploads/travel-policy-" in body
    assert re.search(r"upload · quarterly\.pdf · 2 pages · 2 chunks · parse \d+ ms", body)
    sources = answer_sources(page).inner_text()
    assert "uploads/quarterly-" in sources and "uploads/travel-policy-" in sources
    assert "phi-4-mini" in text
    stored = sorted(p.name for p in (stack.corpus / "uploads").iterdir())
    assert len(stored) == 2

    send(page, "/docs")
    delete = page.get_by_role("button", name="Delete travel-policy.docx")
    delete.wait_for(timeout=20_000)
    delete.click()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_function("() => document.body.innerText.includes('its chunks are gone from the index')", timeout=20_000)
    remaining = [p.name for p in (stack.corpus / "uploads").iterdir()]
    assert len(remaining) == 1 and remaining[0].startswith("quarterly-")
    shot(page, "docs")


def test_switching_the_mode_changes_the_next_answer(page, stack: Stack) -> None:
    assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?")
    choose_mode(page, "gpt-oss-20b only")
    assert "gpt-oss-20b · large mode" in ask(page, "Which port does Ollama use?")
    assert stack.fake.log()["log"][-1]["model"] == "gpt-oss-20b"


def test_side_by_side_fills_both_columns(page, stack: Stack) -> None:
    stack.fake.script(**{
        "phi-4-mini": {"content": ["Port ", "11434 ", "[1]."], "delay_between": 0.1},
        "gpt-oss-20b": {"reasoning": ["Thinking it over."], "content": ["Ollama ", "uses ", "**port ", "11434** ", "[1]."],
                        "delay_between": 0.1},
    })
    choose_mode(page, "Side by side")
    ask(page, "Which port does Ollama use?")
    page.wait_for_function("() => document.querySelectorAll('.compare-column').length == 2", timeout=20_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare-column')].every(c => c.innerText.includes('done'))", timeout=20_000)
    left, right = (page.locator(".compare-column").nth(i).inner_text() for i in range(2))
    assert left.startswith("phi-4-mini") and "Port 11434 [1]." in left
    assert right.startswith("gpt-oss-20b") and "Ollama uses port 11434 [1]." in right and "**" not in right
    assert "Thinking it over." not in right.split("reasoning (")[0]
    assert re.search(r"FIRST TOKEN\s+\d+ ms", left, re.IGNORECASE) and "$0.0000" in right
    # Markdown renders, and [n] opens source n of the list under the answer, as in a single answer (a
    # first-contact walk saw "**foundry model run phi-4-mini**" and a dead [1] in the columns)
    right_column = page.locator(".compare-column").nth(1)
    assert right_column.locator(".compare-answer .font-bold").inner_text() == "port 11434"  # Chainlit's bold
    right_column.locator("a[href*='-1']").first.click()
    page.wait_for_function("() => [...document.querySelectorAll('details.source-item')].some(d => d.open)", timeout=10_000)
    shot(page, "compare")
    # The next answer's columns were put on the page after this one (issue 25): they show under the next
    # answer only, filled, and after a reload every answer shows its own final columns, none empty.
    stack.fake.script(**{"phi-4-mini": {"content": ["Second ", "small."]}, "gpt-oss-20b": {"content": ["Second ", "large."]}})
    ask(page, "And LM Studio?")
    done = "() => [...document.querySelectorAll('.compare-column')].filter(c => c.innerText.includes('done')).length"
    page.wait_for_function(f"{done} == 4", timeout=20_000)
    texts = page.locator(".compare-column").all_inner_texts()
    assert len(texts) == 4 and "Second small." in texts[2] and "Second large." in texts[3]
    assert "Second" not in texts[0] + texts[1]
    page.reload()
    page.wait_for_function(f"{done} == 4", timeout=30_000)
    assert page.locator(".compare-column").count() == 4


def test_stop_button_cancels_and_the_chat_goes_on(page, stack: Stack) -> None:
    stack.fake.script(**{"phi-4-mini": {"content": [f"slow{i} " for i in range(200)], "delay_between": 0.1}})
    send(page, "Which port does Ollama use?")
    page.wait_for_function("() => document.body.innerText.includes('slow3')", timeout=20_000)
    page.click("#stop-button")
    page.wait_for_function("() => document.body.innerText.includes('(stopped)')", timeout=10_000)
    shown = len(re.findall(r"slow\d+", page.inner_text("body")))
    stack.fake.script()
    assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?")
    # A whole answer later, a stream still running would have added tokens (one every 100 ms).
    assert len(re.findall(r"slow\d+", page.inner_text("body"))) == shown < 60


def test_a_follow_up_after_a_stopped_answer_is_searched_with_its_question(page, stack: Stack) -> None:
    """Stop a long answer, ask for it shorter: the follow-up is read and searched against the stopped
    question (a first-contact walk found it searched alone: a stopped answer was not remembered)."""
    stack.fake.script(**{"phi-4-mini": {"content": [f"slow{i} " for i in range(200)], "delay_between": 0.1}})
    send(page, "How do I run the models with vLLM?")
    page.wait_for_function("() => document.body.innerText.includes('slow3')", timeout=20_000)
    page.click("#stop-button")
    page.wait_for_function("() => document.body.innerText.includes('(stopped)')", timeout=10_000)
    stack.fake.script()
    ask(page, "shorter please")
    page.get_by_text(re.compile(r"retrieve · support \d+% · \d+ ms")).last.click()
    own_step = page.locator(".step[data-step-type=retrieval]").filter(has_text="query: 'shorter please'").last
    assert ("a follow-up: searched with what it follows, at 50% weight: 'How do I run the models with vLLM?'"
            in own_step.inner_text(timeout=10_000))
    assert "vllm" in answer_sources(page).inner_text().lower()


def test_an_empty_file_is_held_back_with_its_reason_and_the_others_attach(page, stack: Stack, tmp_path: Path) -> None:
    """A 0-byte file got only Chainlit's "Upload failed" toast and a traceback in the server's log (a
    first-contact walk); now it is named as empty and the file chosen with it is attached."""
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    notes = tmp_path / "notes-kiwi.md"
    notes.write_text("# Kiwi\n\nThe kiwi server listens on port 4242.\n", encoding="utf-8")
    page.set_input_files("#upload-button-input", [str(empty), str(notes)])
    page.wait_for_function("() => document.body.innerText.includes('empty.txt is empty (0 bytes)')", timeout=10_000)
    page.wait_for_function("() => document.body.innerText.includes('notes-kiwi.md')", timeout=30_000)
    assert "Upload failed" not in page.inner_text("body")
    ask(page, "Which port does the kiwi server listen on?", timeout=40_000)
    assert "uploads/notes-kiwi" in answer_sources(page).inner_text()


def test_a_question_about_attachments_none_of_which_could_be_added_is_not_answered_from_others(
        page, stack: Stack, tmp_path: Path) -> None:
    """"Summarize the attached report" with a corrupt PDF got an answer from the bundled documents (a
    first-contact walk); now it says why it was not answered, and the next question is answered."""
    bad = tmp_path / "report.pdf"
    bad.write_bytes(bytes(range(256)) * 40)
    attach(page, [bad])
    send(page, "Summarize the attached report")
    page.wait_for_function("() => document.body.innerText.includes('none of the attached files could be added')",
                           timeout=30_000)
    assert "report.pdf was not added" in page.inner_text("body")
    assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?")


def test_model_server_killed_mid_answer(page, stack: Stack) -> None:
    stack.fake.script(**{"phi-4-mini": {"content": [f"part{i} " for i in range(200)], "delay_between": 0.1}})
    before = answered(page)
    send(page, "Which port does Ollama use?")
    page.wait_for_function("() => document.body.innerText.includes('part3')", timeout=20_000)
    stack.fake.kill()
    try:
        page.wait_for_function(
            "([re, n]) => [...document.querySelectorAll('.step[data-step-type=assistant_message]')]"
            ".filter(e => new RegExp(re).test(e.innerText)).length > n", arg=[FOOTER, before], timeout=30_000)
        text = last_answer(page)
        assert text.startswith("Extract from the documents")
        assert "phi-4-mini" in text and ("stream cut" in text or "cannot connect" in text or "connection lost" in text)
        assert "Traceback" not in page.inner_text("body")
        shot(page, "server-killed")
    finally:
        stack.fake.start()
    assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?", timeout=40_000)


def test_an_everyday_question_is_refused_plainly_without_a_model(page, stack: Stack) -> None:
    before = stack.fake.log()["requests"]
    text = ask(page, "How do I bake sourdough bread?")
    assert text.startswith("Your documents do not cover this question, so I have not answered it.")
    assert "off-topic" in text and "RAG_" not in text  # plain words for the user (issue 26); the setting is in the step
    body = page.inner_text("body")
    assert re.search(r"retrieve · support \d+% · \d+ ms", body) and re.search(r"off topic · \d+ ms", body)
    assert stack.fake.log()["requests"] == before  # no model was asked
    stack.fake.script()
    assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?")  # the next question is answered


def test_the_answer_carries_copy_and_rating_and_the_earlier_answers_stay_as_they_were(page, stack: Stack) -> None:
    """Issues 25 and 26: an opened source stays open while the conversation goes on (every question used to
    remount each answer's sources, closing them); the latest answer's latency step is open with the chart
    in it, earlier ones closed; Copy and the rating sit under the answer, not under the chart."""
    words = ["Ollama ", "uses ", "port ", "11434 ", "by ", "default, ", "as ", "its ", "guide ", "says ", "[1]."]
    stack.fake.script(**{"phi-4-mini": {"content": words}, "gpt-oss-20b": {"content": words}})
    ask(page, "Which port does Ollama use?")
    first = page.locator(MESSAGES).filter(has_text="Ollama uses port 11434 by default")
    first.locator("details.source-item summary").first.click()
    first.locator("details.source-item[open] .source-passage").first.wait_for(timeout=10_000)
    words = ["BM25 ", "scores ", "a ", "passage ", "by ", "its ", "terms, ", "weighted ", "by ", "rarity ", "[1]."]
    stack.fake.script(**{"phi-4-mini": {"content": words}, "gpt-oss-20b": {"content": words}})
    ask(page, "What is BM25?")
    page.wait_for_function("() => !document.querySelector('#stop-button')", timeout=30_000)
    assert first.locator("details.source-item[open] .source-passage").count() == 1  # still open, still rendered
    # One chart, in the latest answer's latency step, which is open; the first answer's is closed.
    page.wait_for_selector(".latency-chart", timeout=10_000)
    assert page.locator(".latency-chart").count() == 1
    latency = page.locator("button", has_text=re.compile(r"latency · retrieve \d+ ms"))
    assert latency.count() == 2
    assert latency.nth(0).get_attribute("aria-expanded") == "false"
    assert latency.nth(1).get_attribute("aria-expanded") == "true"
    # The open step's stages only: a closed step's are not mounted (once its closing animation ends).
    page.wait_for_function("() => [...document.querySelectorAll('button')].filter(b => /^\\s*retrieve · support/"
                           ".test(b.innerText)).length === 1", timeout=10_000)
    # Copy and the rating are the answer's: the last assistant message of the turn is the answer.
    last = page.locator(MESSAGES).last
    assert "BM25 scores a passage by its terms" in last.inner_text()
    assert last.locator("button:has(svg.lucide-copy)").count() == 1
    assert last.locator("button:has(svg.lucide-thumbs-up)").count() == 1
    # A rating reaches /stats grouped by the answer's mode and model (it was stored against the turn's
    # run step, whose metadata is empty: /stats counted it and could not say for what).
    last.locator("button:has(svg.lucide-thumbs-up)").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Submit feedback").click()
    page.wait_for_selector("text=Feedback updated", timeout=10_000)
    send(page, "/stats")
    page.wait_for_function("() => document.body.innerText.includes('rated answer')", timeout=20_000)
    report = page.locator(MESSAGES).last.inner_text()
    assert re.search(r"Feedback on 1 rated answer", report)
    assert re.search(r"auto\s+1\s+100%", report) and re.search(r"phi-4-mini\s+1\s+100%", report), report
    ask(page, "And which port again?")  # the next question is answered
