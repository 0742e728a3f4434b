"""`rag eval`: a question set through the whole pipeline in each mode, scored, with a Markdown report."""
