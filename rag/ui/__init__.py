"""The Chainlit side of the app: the answer and comparison views, the history data layer, and the chat's
own messages (the greeting, /docs, /stats, /export, uploads, pasted text).

With `app.py`, the only code that imports Chainlit; `app.py` keeps the handlers and hands these modules
the services it built at start-up (nothing here imports the app).
"""
