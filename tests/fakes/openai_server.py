"""The fake OpenAI-compatible server lives in rag.bench (the overhead benchmark ships with it)."""

from rag.bench.fake_server import FakeOpenAIServer, Reply, default_reply

__all__ = ["FakeOpenAIServer", "Reply", "default_reply"]
