// The Compare element's component (see ../Compare.jsx, which builds it once per page from this file).
// Plain JavaScript, not JSX: Chainlit compiles and runs a custom element's own file again at every render
// of the chat, so that file is a stub and this, the component, is compiled once.
//
// Side-by-side comparison of two models answering the same question from the same sources.
// Props: sources, live, columns: [{alias, model_id, status, text, markdown, reasoning, error, note, ttft_ms, total_ms,
// tokens, tok_s (null when too few tokens to mean anything), cost, estimated, cited}].
// Each column's answer is rendered as Markdown from props `markdown` (the text made safe by the app, nothing
// in it loads, its [n] linked to the sources list under it); plain `text` if absent. Columns sit side by side from 2 × 300 px and stack on narrower screens.
// While the answer streams, props.live names its feed (rag/ui/live.py): the columns come through it and
// re-render this element only (an update of the element's props re-renders every message of the chat).
// At the end the feed says "end" and the props carry the final columns.
(function build(React, Markdown) {
  const { memo, useEffect, useState } = React;
  const h = React.createElement;
  const answer = (column) => (column.markdown != null && Markdown
    ? h("div", { className: "compare-answer text-sm leading-relaxed" },
        h(Markdown, { renderMarkdown: true, allowHtml: false, latex: false }, column.markdown))
    : h("div", { className: "compare-answer text-sm whitespace-pre-wrap leading-relaxed" }, column.text));

  const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms) + " ms");

  const metric = (label, value) => h("div", { key: label, style: { display: "flex", flexDirection: "column", minWidth: 0 } },
    h("span", { className: "text-xs text-muted-foreground", style: { fontSize: 10, textTransform: "uppercase", letterSpacing: "0.04em" } }, label),
    h("span", { className: "text-sm font-medium tabular-nums", style: { whiteSpace: "nowrap" } }, value));

  const STATUS = { waiting: "waiting for first token…", streaming: "streaming…", done: "done", error: "failed", stopped: "stopped" };

  const columnView = (column) => h("div", {
    key: column.alias, className: "compare-column rounded-lg border border-border", "data-model": column.alias,
    style: { flex: "1 1 300px", minWidth: "min(100%, 300px)", padding: 12, display: "flex", flexDirection: "column", gap: 8 },
  },
    h("div", { className: "flex items-baseline justify-between gap-2" },
      h("span", { className: "font-semibold" }, column.alias),
      h("span", { className: "text-xs " + (column.status === "error" ? "text-red-500" : "text-muted-foreground") },
        STATUS[column.status] || column.status)),
    h("div", { className: "text-xs text-muted-foreground truncate", title: column.model_id }, column.model_id),
    h("div", { style: { display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(92px, 1fr))", gap: 8 } },
      metric("first token", fmtMs(column.ttft_ms)),
      metric("total", fmtMs(column.total_ms)),
      metric("tokens", column.tokens != null ? column.tokens + (column.estimated ? "*" : "") : "–"),
      metric("tok/s", column.tok_s != null ? column.tok_s.toFixed(1) : "–"),
      metric("cost", column.cost != null ? "$" + column.cost.toFixed(6) : "–"),
      metric("cited", column.cited && column.cited.length ? column.cited.map((n) => "[" + n + "]").join(" ") : "–")),
    column.error ? h("div", { className: "compare-error text-sm text-red-500 whitespace-pre-wrap" }, column.error) : null,
    column.note ? h("div", { className: "compare-note text-xs text-amber-600 whitespace-pre-wrap" }, column.note) : null,
    answer(column),
    column.reasoning ? h("details", { className: "text-xs text-muted-foreground" },
      h("summary", { className: "cursor-pointer" }, "reasoning (" + column.reasoning.length + " characters, not part of the answer)"),
      h("div", { className: "whitespace-pre-wrap mt-1" }, column.reasoning)) : null);

  const Columns = function CompareColumns({ p: props, api }) {
    const [streamed, setStreamed] = useState(null);
    useEffect(() => {
      if (!props.live || typeof EventSource === "undefined") return undefined;
      const base = ((api && api.httpEndpoint) || window.location.origin + "/").replace(/\/$/, "");
      const source = new EventSource(base + "/live/" + encodeURIComponent(props.live));
      source.onmessage = (event) => {
        try { setStreamed(JSON.parse(event.data)); } catch (e) { /* a torn message: the next one follows */ }
      };
      source.addEventListener("end", () => source.close());
      source.onerror = () => source.close();  // e.g. another app process: the final props still come
      return () => source.close();
    }, [props.live]);
    const shown = props.live && streamed ? streamed : props;
    const columns = shown.columns || [];
    return h("div", { className: "compare-view", style: { display: "flex", flexDirection: "column", gap: 8, width: "100%" } },
      h("div", { className: "text-xs text-muted-foreground" },
        "Same question, same " + (shown.sources || 0) + " sources, both models at once. * = token count estimated with tiktoken."),
      h("div", { style: { display: "flex", flexWrap: "wrap", gap: 12, width: "100%" } }, columns.map(columnView)));
  };

  // props.preload: the greeting's element, which only builds this component before the first question
  // (see Sources.js). It shows nothing.
  return memo(function Compare({ p: props, api }) { return props.preload ? null : h(Columns, { p: props, api }); });
})
