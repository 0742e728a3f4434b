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
    if (el && !el.getAttribute("aria-label") && !el.innerText.trim()) {
      el.setAttribute("aria-label", text);
      if (!el.title) el.title = text;
    }
  }
  function label() {
    for (const [id, text] of Object.entries(LABELS)) name(document.getElementById(id), text);
    for (const [selector, text] of BY_SELECTOR) document.querySelectorAll(selector).forEach((el) => name(el, text));
  }
  new MutationObserver(label).observe(document.documentElement, { childList: true, subtree: true });
  label();
})();
