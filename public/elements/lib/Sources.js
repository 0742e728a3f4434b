// The Sources element's component (see ../Sources.jsx, which builds it once per page from this file).
// Plain JavaScript, not JSX: Chainlit compiles and runs a custom element's own file again at every render
// of the chat, so that file is a stub and this, the component, is compiled once.
//
// The sources under an answer: one collapsed row per source, opening to its passage rendered as Markdown,
// marked inside the text around it in its document. The answer's [n] links (href "#<anchor>-<n>") open
// and scroll to source n. Props: anchor, sources: [{number, location, chunk, page, span, score, cited,
// text, before, after}] (Markdown made safe by the app: nothing in it loads by itself).
(function build(React, Markdown) {
  const { memo, useEffect, useState } = React;
  const h = React.createElement;
  const markdown = (text) => h(Markdown, { renderMarkdown: true, allowHtml: false, latex: false }, text);

  const List = function SourcesList({ p: props }) {
    const sources = props.sources || [];
    const anchor = props.anchor || "source";
    // A passage is rendered only once its row is opened: a long conversation holds hundreds of sources,
    // and rendering all their Markdown up front made every later answer slower to appear (BENCHMARKS.md).
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

    const passage = (s) => [
      h("div", { key: "where", className: "text-xs text-muted-foreground", style: { marginTop: 4 } },
        (s.page ? "page " + s.page + " · " : "") + "chunk " + s.chunk + ", characters " + s.span[0] + "–" + s.span[1]),
      s.before ? h("div", { key: "before", className: "source-context text-sm text-muted-foreground", style: { opacity: 0.7, marginTop: 4 } },
        // The ellipsis on a line of its own: glued to the text, "…# Troubleshooting" was no heading.
        h("div", { "aria-hidden": "true" }, "…"), markdown(s.before)) : null,
      h("div", { key: "text", className: "source-passage text-sm", style: { borderLeft: "3px solid #3b82f6", paddingLeft: 8, marginTop: 4 } },
        markdown(s.text)),
      s.after ? h("div", { key: "after", className: "source-context text-sm text-muted-foreground", style: { opacity: 0.7, marginTop: 4 } },
        markdown(s.after), h("div", { "aria-hidden": "true" }, "…")) : null,
    ];

    return h("div", { className: "sources-list", style: { display: "flex", flexDirection: "column", gap: 4, width: "100%" } },
      h("style", null, ".source-flash { outline: 2px solid #3b82f6; transition: outline 0.3s; }"),
      h("div", { className: "text-xs text-muted-foreground" },
        "Sources (" + sources.length + ") · ✓ cited in the answer · click [n] or a row to read the passage"),
      sources.map((s) => h("details", {
        key: s.number, id: anchor + "-" + s.number, className: "source-item rounded-md border border-border",
        style: { padding: "4px 8px" },
        onToggle: (event) => {
          const isOpen = event.currentTarget.open;
          setOpened((o) => (o[s.number] === isOpen ? o : { ...o, [s.number]: isOpen }));
        },
      },
        h("summary", { className: "text-sm", style: { cursor: "pointer", display: "flex", gap: 8, alignItems: "baseline" } },
          h("span", { className: "font-semibold" }, "[" + s.number + "]"),
          h("span", { style: { fontFamily: "monospace", overflowWrap: "anywhere" } }, s.location),
          s.cited ? h("span", { title: "cited in the answer" }, "✓") : null,
          h("span", { className: "text-xs text-muted-foreground", style: { marginLeft: "auto", whiteSpace: "nowrap" } },
            "score " + s.score.toFixed(2))),
        opened[s.number] ? passage(s) : null)));
  };

  // An element with props.preload is the greeting's: it only builds this component while nobody waits
  // for an answer, so the first answer's sources fetch only their 4-line stub (issue 25). It shows nothing.
  return memo(function Sources({ p: props }) { return props.preload ? null : h(List, { p: props }); });
})
