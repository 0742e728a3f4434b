// Side by side's two columns (the component: lib/Compare.js; why a stub: see Sources.jsx).
import { Markdown } from "@/components/markdown";

const load = window.__ragLoad || (window.__ragLoad = (name) => { const r = new XMLHttpRequest(); r.open("GET", apiClient.buildEndpoint("/public/elements/lib/" + name + ".js"), false); r.send(); if (r.status !== 200) throw new Error("public/elements/lib/" + name + ".js: HTTP " + r.status); return new Function("return (" + r.responseText + "\n);")(); });
const Compare = window.__ragCompare || (window.__ragCompare = load("Compare")(React, Markdown));

export default <Compare p={props} api={apiClient} />;
