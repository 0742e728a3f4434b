// Time to first token and total time per model, over this session's answers (newest 30).
// Props: points: [{n, mode, escalated, runs: [{model, ttft, total}]}], auto_answers, escalated.
import { memo } from "react";

const COLORS = ["#3b82f6", "#f97316", "#10b981", "#a855f7"];

function fmt(ms) {
  return ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s" : Math.round(ms) + " ms";
}

// Made once per page and kept on window: Chainlit evaluates this file again whenever the chat re-renders
// (every question does), and a new component each time would remount every LatencyChart element of the
// conversation, closing what the user opened and costing each answer more than the last (issue 25).
// The element below hands it this element's props, the same object until they change, so memo skips it.
const LatencyChart = window.__ragLatencyChart || (window.__ragLatencyChart = memo(function LatencyChart({ p: props }) {
  const points = props.points || [];
  const models = [];
  points.forEach((p) => p.runs.forEach((r) => { if (!models.includes(r.model)) models.push(r.model); }));
  const color = (m) => COLORS[models.indexOf(m) % COLORS.length];
  const max = Math.max(1, ...points.flatMap((p) => p.runs.map((r) => r.total)));
  const W = 640, H = 220, left = 52, bottom = 28, top = 14;
  const plotH = H - bottom - top;
  const group = points.length ? (W - left - 8) / points.length : 0;
  const bar = Math.max(3, Math.min(22, (group - 6) / Math.max(1, Math.max(...points.map((p) => p.runs.length)))));
  const y = (v) => top + plotH - (v / max) * plotH;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const share = props.auto_answers ? Math.round((100 * props.escalated) / props.auto_answers) : null;
  const title = <div className="text-sm"><strong>Latency this session</strong>, redrawn after each answer (<code>/stats</code> for the numbers)</div>;
  if (!models.length) {
    return (
      <div className="latency-chart flex flex-col gap-1 w-full">
        {title}
        <div className="text-xs text-muted-foreground">Nothing to plot yet: the answers so far came from the documents (extracts), with no model timings.</div>
      </div>
    );
  }
  return (
    <div className="latency-chart flex flex-col gap-1 w-full">
      {title}
      <div className="flex flex-wrap items-center gap-3 text-xs">
        {models.map((m) => (
          <span key={m} className="flex items-center gap-1">
            <span style={{ background: color(m), width: 10, height: 10, display: "inline-block", borderRadius: 2 }} />
            {m}
          </span>
        ))}
        <span className="text-muted-foreground">solid: time to first token · light: total time · ↑ escalated · ⇄ side by side</span>
        {share !== null ? (
          <span className="ml-auto font-medium">escalation share (auto): {props.escalated}/{props.auto_answers} ({share}%)</span>
        ) : null}
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} className="w-full" role="img" aria-label="latency per answer">
        {ticks.map((t, i) => (
          <g key={i}>
            <line x1={left} x2={W} y1={y(t)} y2={y(t)} stroke="currentColor" strokeOpacity="0.12" />
            <text x={left - 6} y={y(t) + 3} fontSize="10" textAnchor="end" fill="currentColor" fillOpacity="0.6">{fmt(t)}</text>
          </g>
        ))}
        {points.map((p, i) => {
          const x0 = left + i * group + (group - bar * p.runs.length) / 2;
          return (
            <g key={p.n}>
              {p.runs.map((r, j) => (
                <g key={j}>
                  <rect x={x0 + j * bar} y={y(r.total)} width={bar - 1} height={top + plotH - y(r.total)} fill={color(r.model)} fillOpacity="0.35">
                    <title>{`#${p.n} ${r.model}: total ${fmt(r.total)}`}</title>
                  </rect>
                  <rect x={x0 + j * bar} y={y(r.ttft)} width={bar - 1} height={top + plotH - y(r.ttft)} fill={color(r.model)}>
                    <title>{`#${p.n} ${r.model}: first token ${fmt(r.ttft)}`}</title>
                  </rect>
                </g>
              ))}
              <text x={left + i * group + group / 2} y={H - 10} fontSize="10" textAnchor="middle" fill="currentColor" fillOpacity="0.7">
                {p.mode === "compare" ? `#${p.n}⇄` : `#${p.n}`}{p.escalated ? " ↑" : ""}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}));

export default <LatencyChart p={props} />;
