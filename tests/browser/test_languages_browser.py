"""A Marathi reader uploads the Marathi workshop page in the browser and asks about it in Marathi."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import Stack, answer_sources
from tests.browser.test_chat_browser import ask
from tests.conftest import SHARED_DATA

PAGE = SHARED_DATA / "seeds" / "workshop-session04.mr.md"


@pytest.mark.skipif(not PAGE.exists(), reason=f"the Marathi seed page is not at {PAGE}")
def test_a_marathi_reader_gets_the_answer_from_the_right_section(page, stack: Stack, tmp_path: Path) -> None:
    upload = tmp_path / "सत्र-४.md"
    shutil.copy(PAGE, upload)
    page.set_input_files("#upload-button-input", [str(upload)])
    ask(page, "धन्यवाद")
    page.wait_for_function("() => document.body.innerText.includes('added as uploads/')", timeout=60_000)
    stored = next(p for p in (stack.corpus / "uploads").iterdir() if p.suffix == ".md")
    try:
        stack.fake.script(**{"phi-4-mini": {"content": ["venv सक्रिय करा आणि डिप्स ", "पुन्हा स्थापित करा [1]."]}})
        text = ask(page, "Chainlit रिक्त दिसत असेल तर काय करावे?")
        assert text.startswith("venv सक्रिय करा आणि डिप्स पुन्हा स्थापित करा") and "phi-4-mini · auto mode" in text
        prompt = json.dumps(stack.fake.log()["last_request"]["messages"], ensure_ascii=False)
        first = prompt.split("<source ")[1]
        assert f"uploads/{stored.name}" in first and "समस्या निवारण" in first  # the troubleshooting section
        sources = answer_sources(page).inner_text()
        assert "समस्या निवारण" in sources  # Devanagari headings render in the sources list
        stack.fake.script()
        assert "phi-4-mini · auto mode" in ask(page, "Which port does Ollama use?")  # the next question too
    finally:
        stored.unlink()  # the shared corpus goes back to the bundled documents for the other tests
        stack.fake.script()
