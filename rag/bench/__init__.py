"""Benchmarks behind `rag bench ...`: retrieval quality and speed, pipeline overhead."""
