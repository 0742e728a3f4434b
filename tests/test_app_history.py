"""Follow-ups keep their history in every mode (a regression found by the load benchmark)."""

from unittest.mock import Mock

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.test_app import _use, app_module, context, server  # noqa: F401 - fixtures


@pytest.mark.parametrize("mode", ["auto", "small", "large", "compare"])
async def test_follow_up_uses_this_sessions_history_in_every_mode(app_module, context: Mock, server: FakeOpenAIServer, mode: str) -> None:  # noqa: F811
    import chainlit as cl

    _use(app_module, base_url=server.url)
    await app_module.start()
    await app_module.settings_changed({"mode": mode})
    await app_module.answer(cl.Message(content="Which port does Ollama use?"))
    await app_module.answer(cl.Message(content="and what about LM Studio?"))
    queries = [c.args[0]["output"].splitlines()[0] for c in context.send_step.call_args_list
               if str(c.args[0].get("output", "")).startswith("query: ")]
    assert queries[-1] == "query: `'Which port does Ollama use?\\nand what about LM Studio?'`"
