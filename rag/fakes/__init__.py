"""Fakes shared by tests and benchmarks: an OpenAI-compatible server, sample documents, the app as a process."""
