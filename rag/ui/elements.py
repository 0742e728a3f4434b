"""The app's own Chainlit elements, by name: each is public/elements/<name>.jsx. Named once here for the
views that build them, the greeting that preloads them and the resumed chat that takes its chart back.
(`rag.ui.state.LATENCY_CHART` is another thing: the session key the chart is kept under.)"""

from __future__ import annotations

SOURCES = "Sources"  # the sources under an answer, each opening to its passage
COMPARE = "Compare"  # side by side's two columns
LATENCY_CHART = "LatencyChart"  # the session's latencies, under the latest answer
