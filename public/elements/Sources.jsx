// The sources under an answer: one collapsed row per source, opening to its passage rendered as Markdown,
// marked inside the text around it in its document. The answer's [n] links (href "#<anchor>-<n>") open
// and scroll to source n. Props: anchor, sources: [{number, location, chunk, page, span, score, cited,
// text, before, after}] (Markdown made safe by the app: nothing in it loads by itself). Inline rather than
// Chainlit's side panel, which since 2.11 opens by itself on every message (Chainlit issue #2979).
import { memo, useEffect, useState } from "react";
import { Markdown } from "@/components/markdown";

// Made once per page and kept on window: Chainlit evaluates this file again whenever the chat re-renders
// (every question does), and a new component each time would remount every Sources element of the
// conversation, closing what the user opened and costing each answer more than the last (issue 25).
// The element below hands it this element's props, the same object until they change, so memo skips it.
const Sources = window.__ragSources || (window.__ragSources = memo(function Sources({ p: props }) {
  const sources = props.sources || [];
  const anchor = props.anchor || "source";
  // A passage is rendered only once its row is opened: a long conversation holds hundreds of sources, and
  // rendering all their Markdown up front made every later answer slower to appear (BENCHMARKS.md).
  const [opened, setOpened] = useState({});

  useEffect(() => {
    const open = (event) => {
      const link = event.target.closest && event.target.closest("a[href^='#" + anchor + "-']");
      if (!link) return;
      event.preventDefault();
      event.stopPropagation();
      const item = document.getElementById(link.getAttribute("href").slice(1));
      if (!item) return;
      item.open = true;
      item.scrollIntoView({ behavior: "smooth", block: "nearest" });
      item.classList.add("source-flash");
      setTimeout(() => item.classList.remove("source-flash"), 1200);
    };
    document.addEventListener("click", open, true);
    return () => document.removeEventListener("click", open, true);
  }, [anchor]);

  return (
    <div className="sources-list" style={{ display: "flex", flexDirection: "column", gap: 4, width: "100%" }}>
      <style>{".source-flash { outline: 2px solid #3b82f6; transition: outline 0.3s; }"}</style>
      <div className="text-xs text-muted-foreground">Sources ({sources.length}) · ✓ cited in the answer · click [n] or a row to read the passage</div>
      {sources.map((s) => (
        <details key={s.number} id={anchor + "-" + s.number} className="source-item rounded-md border border-border" style={{ padding: "4px 8px" }}
          onToggle={(event) => { const isOpen = event.currentTarget.open; setOpened((o) => (o[s.number] === isOpen ? o : { ...o, [s.number]: isOpen })); }}>
          <summary className="text-sm" style={{ cursor: "pointer", display: "flex", gap: 8, alignItems: "baseline" }}>
            <span className="font-semibold">[{s.number}]</span>
            <span style={{ fontFamily: "monospace", overflowWrap: "anywhere" }}>{s.location}</span>
            {s.cited ? <span title="cited in the answer">✓</span> : null}
            <span className="text-xs text-muted-foreground" style={{ marginLeft: "auto", whiteSpace: "nowrap" }}>
              score {s.score.toFixed(2)}
            </span>
          </summary>
          {opened[s.number] ? (<>
          <div className="text-xs text-muted-foreground" style={{ marginTop: 4 }}>
            {s.page ? "page " + s.page + " · " : ""}chunk {s.chunk}, characters {s.span[0]}–{s.span[1]}
          </div>
          {s.before ? (
            <div className="source-context text-sm text-muted-foreground" style={{ opacity: 0.7, marginTop: 4 }}>
              {/* The ellipsis on a line of its own: glued to the text, "…# Troubleshooting" was no heading. */}
              <div aria-hidden="true">…</div>
              <Markdown renderMarkdown={true} allowHtml={false} latex={false}>{s.before}</Markdown>
            </div>
          ) : null}
          <div className="source-passage text-sm" style={{ borderLeft: "3px solid #3b82f6", paddingLeft: 8, marginTop: 4 }}>
            <Markdown renderMarkdown={true} allowHtml={false} latex={false}>{s.text}</Markdown>
          </div>
          {s.after ? (
            <div className="source-context text-sm text-muted-foreground" style={{ opacity: 0.7, marginTop: 4 }}>
              <Markdown renderMarkdown={true} allowHtml={false} latex={false}>{s.after}</Markdown>
              <div aria-hidden="true">…</div>
            </div>
          ) : null}
          </>) : null}
        </details>
      ))}
    </div>
  );
}));

export default <Sources p={props} />;
