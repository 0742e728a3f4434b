// Accessible names for Chainlit's icon-only buttons (screen readers announced them as "button").
// Chainlit renders them without aria-labels; they come and go as the UI changes, so a MutationObserver
// labels each one when it appears. Labels only: no behaviour changes.
(function () {
  const LABELS = {
    "upload-button": "Attach files",
    "chat-settings-open-modal": "Chat settings",
    "chat-submit": "Send message",
    "stop-button": "Stop answering",
    "command-button": "Commands",
    "new-chat-button": "New chat",
    "theme-toggle": "Toggle theme",
    "scroll-down-button": "Scroll to the latest message",
    "sidebar-trigger-button": "Show or hide conversations",
    "search-chats-button": "Search conversations",
  };
  // Buttons without an id, recognised by a class of their own or by their Lucide icon.
  const BY_SELECTOR = [
    ["button.edit-message", "Edit message"],
    ["button:has(svg.lucide-copy), button:has(svg.lucide-check)", "Copy"],
    ["button:has(svg.lucide-thumbs-up)", "Helpful"],
    ["button:has(svg.lucide-thumbs-down)", "Not helpful"],
    ["button:has(svg.lucide-square-pen), button:has(svg.lucide-pen-square)", "New chat"],
    ["button:has(svg.lucide-x)", "Close"],
    ["button:has(svg.lucide-ellipsis)", "Conversation options"],
    ["button:has(svg.lucide-arrow-down)", "Scroll to the latest message"],
  ];
  function name(el, text) {
    // textContent, not innerText: innerText lays the page out, once per button, on every change.
    if (el && !el.getAttribute("aria-label") && !el.textContent.trim()) {
      el.setAttribute("aria-label", text);
      if (!el.title) el.title = text;
    }
  }
  function each(root, selector, fn) {
    if (root.matches(selector)) fn(root);
    root.querySelectorAll(selector).forEach(fn);
  }
  function titleOf(item) {
    return item ? item.textContent.replace(/\s+/g, " ").trim() : "";
  }
  // Issue 26: what a screen reader or a keyboard met. Names only, and the one missing tab stop.
  function accessible(root) {
    each(root, "[role=slider]:not([aria-label])", (thumb) => {  // the settings' sliders, named by their label
      const owner = thumb.closest("[id]");
      const label = owner && document.querySelector('label[for="' + CSS.escape(owner.id) + '"]');
      if (label) thumb.setAttribute("aria-label", label.firstChild ? label.firstChild.textContent.trim() : label.textContent.trim());
    });
    each(root, "#user-nav-button:not([aria-label])", (el) => el.setAttribute("aria-label", "Account menu"));
    each(root, 'a[href^="/thread/"] > button', (el) => el.setAttribute("tabindex", "-1"));  // one stop: the link
    each(root, '[id="thread-options"]:not([tabindex])', (el) => {  // a div: no keyboard could open the menu
      const link = el.closest('a[href^="/thread/"]');
      el.setAttribute("tabindex", "0");
      el.setAttribute("role", "button");
      el.setAttribute("aria-haspopup", "menu");
      el.setAttribute("aria-label", "Options for " + titleOf(link && link.querySelector("span")));
    });
    each(root, 'a[href*="#source-"]:not([aria-label])', (el) => {  // a citation: "[1]" read as "source 1"
      const n = el.textContent.replace(/[^0-9]/g, "");
      if (n) el.setAttribute("aria-label", "source " + n);
    });
    each(root, "[role=alertdialog], [role=dialog]", (dialog) => {  // say which conversation is deleted
      const heading = dialog.querySelector("h2");
      if (heading && heading.textContent === "Delete this conversation?" && lastConversation) {
        heading.textContent = "Delete “" + lastConversation + "”?";
      }
    });
  }
  let lastConversation = "";
  function remember(event) {
    const options = event.target.closest && event.target.closest('[id="thread-options"]');
    const link = options && options.closest('a[href^="/thread/"]');
    if (link) lastConversation = titleOf(link.querySelector("span"));
  }
  document.addEventListener("pointerdown", remember, true);
  document.addEventListener("keydown", remember, true);
  function labelWithin(root) {
    for (const [selector, text] of BY_SELECTOR) {
      if (root.matches(selector)) name(root, text);
      root.querySelectorAll(selector).forEach((el) => name(el, text));
    }
    accessible(root);
  }
  // Only what was added is looked at: scanning the whole page on every change cost each streamed update
  // more as the conversation grew (150 ms of script per answer by the 30th; issue 25).
  function changed(records) {
    for (const [id, text] of Object.entries(LABELS)) name(document.getElementById(id), text);
    const seen = new Set();
    for (const record of records) {
      for (const node of record.addedNodes) {
        const el = node.nodeType === 1 ? node : node.parentElement;
        // A button whose icon was swapped (copy -> check) is matched by the button, not the new icon.
        const root = el && (el.closest("button") || el);
        if (root && !seen.has(root) && root.isConnected) {
          seen.add(root);
          labelWithin(root);
        }
      }
    }
  }
  new MutationObserver(changed).observe(document.documentElement, { childList: true, subtree: true });
  changed([{ addedNodes: [document.documentElement] }]);
})();

// A message longer than the chat takes never leaves the browser: Socket.IO drops the whole connection on
// an over-long frame, silently, and the sender would wait for nothing. The same limit is enforced by the
// server (rag/paste.py MAX_MESSAGE_CHARS; a test keeps the two equal), which says the same words.
(function () {
  const MAX_MESSAGE_CHARS = 200000;
  const INPUTS = ["chat-input", "edit-chat-input"];
  function textOf(el) {
    return el.value !== undefined ? el.value : el.innerText || "";
  }
  function notice(el, length) {
    let box = document.getElementById("message-too-long");
    if (length <= MAX_MESSAGE_CHARS) {
      if (box) box.remove();
      return false;
    }
    if (!box) {
      box = document.createElement("div");
      box.id = "message-too-long";
      box.setAttribute("role", "alert");
      box.className = "text-sm text-red-600 dark:text-red-400 px-4 py-2";
      const composer = el.closest("#message-composer") || el.parentElement;
      composer.parentElement.insertBefore(box, composer.nextSibling);
    }
    box.textContent =
      "This message is " + length.toLocaleString("en") + " characters long; a chat message (and /paste) holds at most " +
      MAX_MESSAGE_CHARS.toLocaleString("en") + ". Attach a longer text as a file (the paperclip: .txt, .md, .pdf, " +
      ".docx or .html) and ask about it. Nothing was sent.";
    return true;
  }
  function tooLong(target) {
    const el = target && target.closest ? INPUTS.map((id) => document.getElementById(id)).find((i) => i && i.contains(target)) : null;
    return el ? notice(el, textOf(el).length) : false;
  }
  function stop(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && tooLong(event.target)) stop(event);
  }, true);
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#chat-submit");
    const input = document.getElementById("chat-input");
    if (button && input && notice(input, textOf(input).length)) stop(event);
  }, true);
  document.addEventListener("input", (event) => { tooLong(event.target); }, true);
})();

// The "/" command menu (issue 26). Chainlit opens it above the composer with up to 300 px of items; on the
// first screen, where the composer sits high, its first item went under the header, out of reach. The
// list is given the height there is (it scrolls beyond). And a command that takes nothing after it
// ("/docs", "/stats", "/chart", "/export") runs when chosen, instead of becoming a chip that waits for a
// second Enter; "/paste" still waits for its text.
(function () {
  const RUN_AT_ONCE = new Set(["docs", "stats", "chart", "export"]);
  function fit() {
    const list = document.querySelector("[cmdk-list]");
    const composer = document.getElementById("message-composer");
    const popover = list && list.closest(".absolute");
    if (!list || !composer || !popover) return;
    const header = document.getElementById("header");
    const ceiling = header ? header.getBoundingClientRect().bottom : 0;
    const box = composer.getBoundingClientRect();
    const spare = 12 /* the popover's margin */ + 16 /* the list's padding */ + 8;
    const above = box.top - ceiling - spare;
    const below = window.innerHeight - box.bottom - spare;
    const wanted = Math.min(300, list.scrollHeight || 300);
    // Where the whole list fits, or else where there is more room: below the composer on the first screen.
    const under = above < wanted && below > above;
    const parent = popover.offsetParent ? popover.offsetParent.getBoundingClientRect() : box;
    popover.style.bottom = under ? "auto" : "";
    popover.style.top = under ? Math.round(box.bottom - parent.top + 8) + "px" : "";  // under the whole composer
    const height = Math.max(112, Math.min(300, Math.floor(under ? below : above))) + "px";
    if (list.style.maxHeight !== height) list.style.maxHeight = height;
  }
  new MutationObserver(() => { if (document.querySelector("[cmdk-list]")) fit(); })
    .observe(document.documentElement, { childList: true, subtree: true });
  window.addEventListener("resize", fit);

  function commandOf(item) {
    return item ? (item.innerText || item.textContent || "").trim().split(/\s+/)[0].toLowerCase() : "";
  }
  function sendOnceChosen(command) {
    if (!RUN_AT_ONCE.has(command)) return;
    let tries = 0;
    const attempt = () => {  // once Chainlit has turned the typed "/docs" into its chip
      const input = document.getElementById("chat-input");
      const submit = document.getElementById("chat-submit");
      // Not with files waiting in the composer: the command would be sent without them.
      const attached = document.querySelector("#attachments > *");
      if (attached) return;
      if (input && submit && !submit.disabled && !input.value.trim() && !document.querySelector("[cmdk-list]")) {
        submit.click();
      } else if (++tries < 20) {
        setTimeout(attempt, 25);
      }
    };
    setTimeout(attempt, 0);
  }
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.target.id !== "chat-input") return;
    if (!/^\/\S*$/.test(event.target.value.trim())) return;  // only "/docs" alone, not "/docs and more"
    sendOnceChosen(commandOf(document.querySelector('[cmdk-item][aria-selected="true"]')));
  }, true);
  document.addEventListener("click", (event) => {
    const item = event.target.closest && event.target.closest("[cmdk-list] [cmdk-item]");
    if (item) sendOnceChosen(commandOf(item));
  }, true);
})();

// An empty file (0 bytes) cannot be attached: Chainlit's upload fails with only "Upload failed" (and a
// traceback in the server's log). It is held back here with its reason; the other files chosen with it
// go on. A drop with an empty file is held back whole (a drop's files cannot be changed): the notice says
// to drop the others again.
(function () {
  function say(text) {
    const composer = document.getElementById("message-composer");
    if (!composer) return;
    let box = document.getElementById("empty-file");
    if (!box) {
      box = document.createElement("div");
      box.id = "empty-file";
      box.setAttribute("role", "alert");
      box.className = "text-sm text-red-600 dark:text-red-400 px-4 py-2";
      composer.parentElement.insertBefore(box, composer.nextSibling);
    }
    box.textContent = text;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { const b = document.getElementById("empty-file"); if (b) b.remove(); }, 10000);
  }
  function emptyOnes(files) {
    return files.filter((f) => f.size === 0).map((f) => f.name);
  }
  function named(names) {
    return names.join(", ") + (names.length > 1 ? " are empty" : " is empty") + " (0 bytes): nothing to add";
  }
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!input || input.type !== "file" || !input.files) return;
    const files = [...input.files];
    const empty = emptyOnes(files);
    if (!empty.length) return;
    const kept = new DataTransfer();
    files.filter((f) => f.size > 0).forEach((f) => kept.items.add(f));
    input.files = kept.files;
    say(named(empty) + (kept.files.length ? "; the other files are attached." : ", so nothing was attached."));
    if (!kept.files.length) event.stopImmediatePropagation();
  }, true);
  document.addEventListener("drop", (event) => {
    const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
    const empty = emptyOnes(files);
    if (!empty.length) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    say(named(empty) + (files.length > empty.length ? "; nothing was attached: drop the others again without it."
                                                    : ", so nothing was attached."));
  }, true);
})();
