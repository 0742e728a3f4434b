"""Answering one question: options, prompt, the pipeline (the event stream), the extract."""
