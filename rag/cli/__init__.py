"""The `rag` command, one module per command group."""
