// The sources under an answer (the component: lib/Sources.js). Chainlit compiles and runs this file again
// at every render of the chat, for every answer's element: kept this short, that costs nothing, where the
// whole component made every question slower by ~2 ms per answer above it (issue 25). The component is
// built once per page (fetched at once: the element needs it now) and kept on window, so it is also the
// same component at every render: nothing the user opened closes.
import { Markdown } from "@/components/markdown";

const load = window.__ragLoad || (window.__ragLoad = (name) => { const r = new XMLHttpRequest(); r.open("GET", apiClient.buildEndpoint("/public/elements/lib/" + name + ".js"), false); r.send(); if (r.status !== 200) throw new Error("public/elements/lib/" + name + ".js: HTTP " + r.status); return new Function("return (" + r.responseText + "\n);")(); });
const Sources = window.__ragSources || (window.__ragSources = load("Sources")(React, Markdown));

export default <Sources p={props} />;
