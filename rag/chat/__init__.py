"""The conversation: its value, columns, session statistics, history, users, export, pasted text."""
