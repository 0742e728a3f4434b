// The sources under an answer: one collapsed row per source, expanding to the passage (plain text).
// Props: sources: [{number, location, chunk, span, score, cited, text}]. Inline rather than Chainlit's side
// panel, which since 2.11 opens by itself on every message (Chainlit issue #2979).

export default function Sources() {
  const sources = props.sources || [];
  return (
    <div className="sources-list" style={{ display: "flex", flexDirection: "column", gap: 4, width: "100%" }}>
      <div className="text-xs text-muted-foreground">Sources ({sources.length}) · ✓ cited in the answer · click to read the passage</div>
      {sources.map((s) => (
        <details key={s.number} className="source-item rounded-md border border-border" style={{ padding: "4px 8px" }}>
          <summary className="text-sm" style={{ cursor: "pointer", display: "flex", gap: 8, alignItems: "baseline" }}>
            <span className="font-semibold">[{s.number}]</span>
            <span style={{ fontFamily: "monospace", overflowWrap: "anywhere" }}>{s.location}</span>
            {s.cited ? <span title="cited in the answer">✓</span> : null}
            <span className="text-xs text-muted-foreground" style={{ marginLeft: "auto", whiteSpace: "nowrap" }}>
              score {s.score.toFixed(2)}
            </span>
          </summary>
          <div className="text-xs text-muted-foreground" style={{ marginTop: 4 }}>
            chunk {s.chunk}, characters {s.span[0]}–{s.span[1]}
          </div>
          <div className="text-sm" style={{ whiteSpace: "pre-wrap", marginTop: 4, lineHeight: 1.5 }}>{s.text}</div>
        </details>
      ))}
    </div>
  );
}
