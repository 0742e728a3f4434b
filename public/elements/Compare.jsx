// Side-by-side comparison of two models answering the same question from the same sources.
// Props (set from app.py): question, columns: [{alias, model_id, status, text, reasoning, error,
// ttft_ms, total_ms, tokens, tok_s (null when too few tokens to mean anything), cost, estimated, cited}].
// Text is rendered as plain text. Columns sit side by side from 2 × 300 px and stack on narrower screens.
import { memo, useEffect, useState } from "react";

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms) + " ms";
}

function Metric({ label, value }) {
  return (
    <div style={{ display: "flex", flexDirection: "column", minWidth: 0 }}>
      <span className="text-xs text-muted-foreground" style={{ fontSize: 10, textTransform: "uppercase", letterSpacing: "0.04em" }}>{label}</span>
      <span className="text-sm font-medium tabular-nums" style={{ whiteSpace: "nowrap" }}>{value}</span>
    </div>
  );
}

function ColumnView({ column }) {
  const status = {
    waiting: "waiting for first token…",
    streaming: "streaming…",
    done: "done",
    error: "failed",
    stopped: "stopped",
  }[column.status] || column.status;
  return (
    <div className="compare-column rounded-lg border border-border" data-model={column.alias}
         style={{ flex: "1 1 300px", minWidth: "min(100%, 300px)", padding: 12, display: "flex", flexDirection: "column", gap: 8 }}>
      <div className="flex items-baseline justify-between gap-2">
        <span className="font-semibold">{column.alias}</span>
        <span className={"text-xs " + (column.status === "error" ? "text-red-500" : "text-muted-foreground")}>{status}</span>
      </div>
      <div className="text-xs text-muted-foreground truncate" title={column.model_id}>{column.model_id}</div>
      <div style={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(92px, 1fr))", gap: 8 }}>
        <Metric label="first token" value={fmtMs(column.ttft_ms)} />
        <Metric label="total" value={fmtMs(column.total_ms)} />
        <Metric label="tokens" value={column.tokens != null ? column.tokens + (column.estimated ? "*" : "") : "–"} />
        <Metric label="tok/s" value={column.tok_s != null ? column.tok_s.toFixed(1) : "–"} />
        <Metric label="cost" value={column.cost != null ? "$" + column.cost.toFixed(6) : "–"} />
        <Metric label="cited" value={column.cited && column.cited.length ? column.cited.map((n) => "[" + n + "]").join(" ") : "–"} />
      </div>
      {column.error ? <div className="compare-error text-sm text-red-500 whitespace-pre-wrap">{column.error}</div> : null}
      {column.note ? <div className="compare-note text-xs text-amber-600 whitespace-pre-wrap">{column.note}</div> : null}
      <div className="compare-answer text-sm whitespace-pre-wrap leading-relaxed">{column.text}</div>
      {column.reasoning ? (
        <details className="text-xs text-muted-foreground">
          <summary className="cursor-pointer">reasoning ({column.reasoning.length} characters, not part of the answer)</summary>
          <div className="whitespace-pre-wrap mt-1">{column.reasoning}</div>
        </details>
      ) : null}
    </div>
  );
}

// Made once per page and kept on window: Chainlit evaluates this file again whenever the chat re-renders
// (every question does), and a new component each time would remount every Compare element of the
// conversation, closing what the user opened and costing each answer more than the last (issue 25).
// The element below hands it this element's props, the same object until they change, so memo skips it.
// While the answer streams, props.live names its feed (rag/ui/live.py): the columns come through it and
// re-render this element only (an update of the element's props re-renders every message of the chat).
// At the end the feed says "end" and the props carry the final columns.
const Compare = window.__ragCompare || (window.__ragCompare = memo(function Compare({ p: props, api }) {
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
  return (
    <div className="compare-view" style={{ display: "flex", flexDirection: "column", gap: 8, width: "100%" }}>
      <div className="text-xs text-muted-foreground">
        Same question, same {shown.sources || 0} sources, both models at once. * = token count estimated with tiktoken.
      </div>
      <div style={{ display: "flex", flexWrap: "wrap", gap: 12, width: "100%" }}>
        {columns.map((column) => <ColumnView key={column.alias} column={column} />)}
      </div>
    </div>
  );
}));

export default <Compare p={props} api={apiClient} />;
