/*!
 * ragtune widget: one script tag puts a chat bubble on any page (a ticket tool, an intranet).
 *
 *   <script src="https://HOST/widget.js" data-api-key="rt_…" data-collection="hr" defer></script>
 *
 * Optional: data-mode="agent" (support agents: a "Draft a reply" panel), data-title, data-adapter.
 * JavaScript API: Ragtune.open(), Ragtune.close(), Ragtune.ask(question),
 *   Ragtune.draftReply(ticketText, {collections, adapter}) -> Promise<{draft, refused, citations, guardrails, request_id}>.
 *
 * Self-contained on purpose (a host page loads one classic script and nothing else): everything lives in a
 * Shadow DOM, styles go in through a constructed stylesheet (allowed under a strict host CSP), model output is
 * built as DOM text nodes (never HTML), and answers stream over fetch + a ReadableStream of Server-Sent Events.
 * The Markdown subset and SSE rules match frontend/shared/markdown.js and sse.js of the chat page.
 */
(() => {
  "use strict";
  if (window.Ragtune && window.Ragtune.version) return; // the tag twice on one page: one widget
  const script = document.currentScript;
  const cfg = {
    base: new URL(script.src, location.href).origin,
    key: script.dataset.apiKey || "",
    collection: script.dataset.collection || "",
    adapter: script.dataset.adapter || "",
    mode: script.dataset.mode === "agent" ? "agent" : "chat",
    title: script.dataset.title || "Ask the knowledge base",
  };

  // ---- DOM helpers: text only, never HTML -------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
    return el;
  }
  const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)|\*(?=[^\s*])([^*]*?[^\s*])\*|(?<!\w)_(?=[^\s_])([^_]*?[^\s_])_(?!\w)|\[([^\]\n]{1,300})\]\(([^)\s]{1,2000})\)|\[(\d{1,3})\]/g;
  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch { return null; }
  }
  function inline(text, chip, depth = 0) {
    const out = [];
    let last = 0;
    const re = new RegExp(INLINE.source, "g");
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m.index > last) out.push(text.slice(last, m.index));
      last = m.index + m[0].length;
      const inner = (t) => (depth < 4 ? inline(t, chip, depth + 1) : [t]);
      if (m[2] !== undefined) out.push(h("code", {}, m[2]));
      else if (m[3] !== undefined || m[4] !== undefined) out.push(h("strong", {}, inner(m[3] ?? m[4])));
      else if (m[5] !== undefined || m[6] !== undefined) out.push(h("em", {}, inner(m[5] ?? m[6])));
      else if (m[7] !== undefined) {
        const href = safeUrl(m[8]);
        out.push(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, inner(m[7])) : m[0]);
      } else out.push((chip && chip(Number(m[9]))) || m[0]);
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }
  /** Paragraphs, bullet/numbered lists, code fences and the inline rules above. */
  function markdown(text, chip) {
    const frag = document.createDocumentFragment();
    const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    const item = /^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$/;
    for (let i = 0; i < lines.length;) {
      if (!lines[i].trim()) { i += 1; continue; }
      if (/^\s*(```|~~~)/.test(lines[i])) {
        const body = [];
        for (i += 1; i < lines.length && !/^\s*(```|~~~)/.test(lines[i]); i += 1) body.push(lines[i]);
        i += 1;
        frag.append(h("pre", {}, h("code", {}, body.join("\n"))));
      } else if (item.test(lines[i])) {
        const list = h(/^\s*\d/.test(lines[i]) ? "ol" : "ul", {});
        for (; i < lines.length && item.test(lines[i]); i += 1) list.append(h("li", {}, inline(item.exec(lines[i])[1], chip)));
        frag.append(list);
      } else {
        const para = h("p", {});
        for (let first = true; i < lines.length && lines[i].trim() && !item.test(lines[i]); i += 1, first = false) {
          if (!first) para.append(h("br", {}));
          para.append(...inline(lines[i].replace(/^#{1,6}\s+/, ""), chip).map((n) => (n instanceof Node ? n : document.createTextNode(n))));
        }
        frag.append(para);
      }
    }
    return frag;
  }

  // ---- API ------------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(kind, message, retryAfterS = null, code = "") {
      super(message);
      Object.assign(this, { kind, retryAfterS, code });
    }
  }
  async function call(path, { json, accept } = {}) {
    let res;
    try {
      res = await fetch(cfg.base + path, {
        method: json === undefined ? "GET" : "POST", credentials: "omit", mode: "cors",
        headers: { Authorization: `Bearer ${cfg.key}`, ...(json !== undefined ? { "Content-Type": "application/json" } : {}), ...(accept ? { Accept: accept } : {}) },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
    } catch {
      throw await unreachable();
    }
    if (res.ok) return res;
    let detail = {};
    try { const body = await res.json(); detail = body.error || body; } catch { /* not JSON */ }
    const retry = Number(res.headers.get("Retry-After"));
    const kind = { 401: "unauthorized", 403: "forbidden", 429: "rate_limited", 503: "busy" }[res.status] || "error";
    throw new ApiError(kind, detail.message || `Request failed (${res.status}).`, Number.isFinite(retry) && res.headers.has("Retry-After") ? retry : null, detail.code);
  }
  /**
   * A fetch that failed outright is either the network or CORS: the server refuses (403, unreadable here) a
   * request from an origin the key does not list. A no-cors probe tells them apart: it reaches a live server.
   */
  async function unreachable() {
    try {
      await fetch(`${cfg.base}/healthz`, { mode: "no-cors", cache: "no-store", credentials: "omit" });
      return new ApiError("forbidden", `This site (${location.origin}) is not among the origins this widget's key allows.`);
    } catch {
      return new ApiError("network", "The assistant cannot be reached. Check your connection.");
    }
  }
  async function* streamChat(body) {
    const res = await call("/v1/chat", { json: { ...body, stream: true }, accept: "text/event-stream" });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", name = "", data = [], done = false;
    for (;;) {
      let chunk;
      try { chunk = await reader.read(); } catch { throw new ApiError("network", "The connection broke during the answer."); }
      buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = chunk.done ? "" : lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) {
            const payload = JSON.parse(data.join("\n"));
            if (name === "token") yield { type: "token", text: String(payload.text || "") };
            else if (name === "final") { done = true; yield { type: "final", data: payload }; }
            else if (name === "error") throw new ApiError("error", payload.message || "The answer failed.");
          }
          name = ""; data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = value;
          else if (field === "data") data.push(value);
        }
      }
      if (chunk.done) break;
    }
    if (!done) throw new ApiError("network", "The answer stream ended early.");
  }
  function describe(error) {
    const words = {
      network: "You appear to be offline.",
      unauthorized: "This widget's API key is not valid any more (revoked?). Ask the site's administrator for a new one.",
      forbidden: "Not allowed here.",
      rate_limited: "Too many questions right now.",
      busy: "The assistant is busy.",
    };
    const detail = String(error.message || "").replace(/^./, (c) => c.toUpperCase()).replace(/([^.!?])$/, "$1.");
    if (error.kind === "unauthorized" || error.kind === "network") return words[error.kind];
    return `${words[error.kind] || "Something went wrong."} ${detail}`.trim();
  }

  // ---- styles (inside the shadow root only) -------------------------------------------------------------
  const CSS = `
:host { all: initial; }
* { box-sizing: border-box; }
/* all: initial here, inside the shadow tree, also cuts what the host's rules on our host element would pass down
   by inheritance (font, colour, letter-spacing...): outer rules beat :host, but never reach .root itself. */
.root { all: initial; display: block; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1d2330; }
button, textarea { font: inherit; }
button { cursor: pointer; border-radius: 8px; border: 1px solid #1f5fbf; background: #1f5fbf; color: #fff; padding: .4rem .8rem; min-height: 2.25rem; }
button.plain { background: #fff; color: #1f5fbf; }
button:disabled { opacity: .6; cursor: not-allowed; }
:focus-visible { outline: 3px solid #f5b400; outline-offset: 2px; }
.bubble { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border-radius: 999px; padding: .7rem 1.1rem; box-shadow: 0 6px 20px rgba(0,0,0,.25); font-weight: 600; }
.panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: min(400px, calc(100vw - 24px)); max-height: min(620px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: #fff; border: 1px solid #cdd3dc; border-radius: 12px; box-shadow: 0 12px 36px rgba(0,0,0,.28); overflow: hidden; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: .5rem; padding: .6rem .8rem; background: #1f5fbf; color: #fff; }
header h2 { font-size: 1rem; margin: 0; flex: 1; }
header button { background: transparent; border-color: #fff; min-height: 2rem; padding: .2rem .6rem; }
.tabs { display: flex; gap: .25rem; padding: .4rem .6rem 0; border-bottom: 1px solid #cdd3dc; }
.tabs button { background: #fff; color: #1d2330; border-color: transparent; border-radius: 8px 8px 0 0; }
.tabs button[aria-selected="true"] { border-color: #cdd3dc; border-bottom-color: #fff; color: #1f5fbf; font-weight: 600; margin-bottom: -1px; }
.view { display: flex; flex-direction: column; min-height: 0; flex: 1; }
.view[hidden] { display: none; }
.log { flex: 1; overflow-y: auto; padding: .6rem .8rem; display: flex; flex-direction: column; gap: .5rem; min-height: 8rem; }
.msg { border-radius: 10px; padding: .45rem .7rem; overflow-wrap: anywhere; }
.msg p { margin: .2rem 0; }
.q { align-self: flex-end; background: #1f5fbf; color: #fff; max-width: 85%; }
.a { align-self: stretch; background: #f6f7f9; border: 1px solid #cdd3dc; }
.chip { display: inline-flex; align-items: center; justify-content: center; min-width: 1.4rem; min-height: 1.4rem; padding: 0 .3rem; margin: 0 .1rem;
  border-radius: 999px; border: 1px solid #1f5fbf; background: #e7effb; color: #1f5fbf; font-size: .75rem; font-weight: 700; line-height: 1; }
.passage { margin: .4rem 0 0; padding: .4rem .6rem; border-left: 4px solid #1f5fbf; background: #fff; font-size: .9rem; white-space: pre-wrap; }
.passage strong { display: block; }
.notice { margin: .35rem 0 0; padding: .3rem .5rem; font-size: .85rem; background: #fff5d6; border: 1px solid #b88a00; border-radius: 6px; }
.muted { color: #4f5868; font-size: .85rem; }
.votes { display: flex; gap: .35rem; align-items: center; margin-top: .35rem; }
.votes button { background: #fff; color: #1d2330; border-color: #cdd3dc; min-height: 2rem; padding: .1rem .55rem; }
.votes button[aria-pressed="true"] { background: #e7effb; border-color: #1f5fbf; }
form { display: flex; gap: .4rem; padding: .6rem .8rem; border-top: 1px solid #cdd3dc; align-items: flex-end; }
form.draft { flex-direction: column; align-items: stretch; }
textarea { flex: 1; min-height: 2.6rem; max-height: 10rem; resize: vertical; border: 1px solid #7d8696; border-radius: 8px; padding: .4rem .55rem; color: #1d2330; background: #fff; }
label { font-weight: 600; font-size: .9rem; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.alert { margin: 0 .8rem .5rem; padding: .45rem .6rem; border: 1px solid #a61b1b; background: #fdecec; border-radius: 8px; font-size: .9rem; display: flex; gap: .5rem; align-items: center; }
.alert[hidden] { display: none; }
.alert span { flex: 1; }
.result { overflow-y: auto; padding: .6rem .8rem; flex: 1; }
.result h3 { font-size: .95rem; margin: 0 0 .3rem; }
.sources { margin: .4rem 0 0; padding-left: 1.2rem; font-size: .88rem; }
@media (max-width: 480px) { .panel { right: 6px; left: 6px; width: auto; bottom: 76px; } .bubble { right: 12px; bottom: 12px; } }
`;

  // ---- the widget --------------------------------------------------------------------------------------
  const host = h("div", { id: "ragtune-widget", "data-ragtune": "" });
  const shadow = host.attachShadow({ mode: "open" });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } catch {
    shadow.append(h("style", {}, CSS)); // older browsers without constructable stylesheets
  }
  let uid = 0;
  const id = (name) => `rt-${name}-${++uid}`;
  const root = h("div", { class: "root" });
  shadow.append(root);

  const bubble = h("button", { class: "bubble", type: "button", "aria-expanded": "false", "aria-controls": "rt-panel" }, cfg.title);
  const closeBtn = h("button", { type: "button", "aria-label": "Close the assistant" }, "Close");
  const panel = h("section", { class: "panel", id: "rt-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "rt-title", hidden: true },
    h("header", {}, h("h2", { id: "rt-title" }, cfg.title), closeBtn));
  root.append(panel, bubble);

  // Chat view
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const alertBox = h("div", { class: "alert", role: "alert", hidden: true });
  const qId = id("q");
  const question = h("textarea", { id: qId, rows: 2, maxlength: 8000, placeholder: "Type your question…" });
  const send = h("button", { type: "submit" }, "Send");
  const chatForm = h("form", {}, h("label", { for: qId, class: "sr" }, "Your question"), question, send);
  const chatView = h("div", { class: "view", id: "rt-chat-view", role: "tabpanel" }, log, alertBox, chatForm);

  // Agent (draft) view
  const ticketId = id("ticket");
  const ticket = h("textarea", { id: ticketId, rows: 4, maxlength: 20000, placeholder: "Paste the customer's ticket…" });
  const draftBtn = h("button", { type: "submit" }, "Draft a reply");
  const result = h("div", { class: "result", "aria-live": "polite" });
  const draftAlert = h("div", { class: "alert", role: "alert", hidden: true });
  const draftForm = h("form", { class: "draft" }, h("label", { for: ticketId }, "Ticket text"), ticket, draftBtn);
  const draftView = h("div", { class: "view", id: "rt-draft-view", role: "tabpanel", hidden: true }, result, draftAlert, draftForm);

  const tabChat = h("button", { type: "button", role: "tab", "aria-selected": "true", "aria-controls": "rt-chat-view" }, "Ask");
  const tabDraft = h("button", { type: "button", role: "tab", "aria-selected": "false", "aria-controls": "rt-draft-view", tabindex: "-1" }, "Draft a reply");
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Assistant mode" }, tabChat, tabDraft);
  panel.append(...(cfg.mode === "agent" ? [tabs] : []), chatView, draftView);

  function selectView(name) {
    const draft = name === "draft";
    chatView.hidden = draft;
    draftView.hidden = !draft;
    tabChat.setAttribute("aria-selected", String(!draft));
    tabDraft.setAttribute("aria-selected", String(draft));
    tabChat.tabIndex = draft ? -1 : 0;
    tabDraft.tabIndex = draft ? 0 : -1;
  }
  tabChat.addEventListener("click", () => { selectView("chat"); question.focus(); });
  tabDraft.addEventListener("click", () => { selectView("draft"); ticket.focus(); });
  tabs.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    const next = tabChat.getAttribute("aria-selected") === "true" ? tabDraft : tabChat;
    next.click();
    next.focus();
  });

  function open(view = "chat") {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    selectView(view);
    (view === "draft" ? ticket : question).focus();
  }
  function close() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.focus();
  }
  bubble.addEventListener("click", () => (panel.hidden ? open() : close()));
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); close(); } });

  function showAlert(box, error, retry) {
    box.replaceChildren(h("span", {}, describe(error)));
    const wait = error.retryAfterS;
    if (retry && error.kind !== "unauthorized" && error.kind !== "forbidden") {
      const btn = h("button", { type: "button", class: "plain" }, wait ? `Retry in ${wait} s` : "Retry");
      btn.addEventListener("click", () => { box.hidden = true; retry(); });
      if (wait) {
        btn.disabled = true;
        let left = wait;
        const timer = setInterval(() => {
          left -= 1;
          btn.textContent = left > 0 ? `Retry in ${left} s` : "Retry";
          if (left <= 0) { clearInterval(timer); btn.disabled = false; }
        }, 1000);
      }
      box.append(btn);
    }
    box.hidden = false;
  }

  function citationTools(citations) {
    const byNumber = new Map((citations || []).map((c) => [c.number, c]));
    const label = (c) => [c.document, c.page ? `page ${c.page}` : "", c.heading].filter(Boolean).join(" · ");
    return {
      chip: (n, container) => {
        const c = byNumber.get(n);
        if (!c) return null;
        return h("button", { type: "button", class: "chip", "aria-label": `Source ${n}: ${label(c)}`, "aria-expanded": "false",
          onclick: (e) => {
            const btn = e.currentTarget;
            const shown = container().querySelector(`[data-source="${n}"]`);
            if (shown) { shown.remove(); btn.setAttribute("aria-expanded", "false"); return; }
            const passage = h("blockquote", { class: "passage", "data-source": n }, h("strong", {}, `[${n}] ${label(c)}`), c.snippet || "");
            container().insertBefore(passage, container().querySelector(":scope > .notice, :scope > .sources, :scope > .votes"));
            btn.setAttribute("aria-expanded", "true");
          } }, String(n));
      },
      list: () => (byNumber.size ? h("ol", { class: "sources", "aria-label": "Sources" }, [...byNumber.values()].map((c) => h("li", { value: c.number }, label(c)))) : null),
    };
  }
  function railNotice(guardrails) {
    if (!guardrails || !guardrails.length) return null;
    const names = { pii: "personal data was masked", injection: "a prompt-injection attempt was blocked", chunk_injection: "instructions hidden in a document were neutralised",
      grounding: "an unsupported answer was withheld", leakage: "an answer repeating internal instructions was withheld", topic: "the question is off-topic" };
    const text = [...new Set(guardrails.map((g) => names[g.rail] || `the ${g.rail} rail acted`))].join("; ");
    return h("p", { class: "notice", role: "note" }, `Guardrails: ${text}.`);
  }

  // ---- chat ---------------------------------------------------------------------------------------------
  let conversationId = null;
  let busy = false;
  function votes(messageId) {
    const status = h("span", { class: "muted", role: "status" });
    const vote = (rating) => async (e) => {
      const pressed = e.currentTarget; // gone from the event once we await
      try {
        await call(`/v1/messages/${encodeURIComponent(messageId)}/feedback`, { json: { rating } });
        for (const b of pressed.parentElement.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === pressed));
        status.textContent = "Thanks for the feedback.";
      } catch (error) { status.textContent = describe(error); }
    };
    return h("div", { class: "votes", role: "group", "aria-label": "Rate this answer" }, h("span", { class: "muted" }, "Helpful?"),
      h("button", { type: "button", "aria-pressed": "false", onclick: vote("up") }, "Yes"),
      h("button", { type: "button", "aria-pressed": "false", onclick: vote("down") }, "No"), status);
  }
  async function ask(text) {
    const q = String(text || "").trim();
    if (!q || busy) return;
    busy = true;
    send.disabled = true;
    alertBox.hidden = true;
    const qEl = h("div", { class: "msg q" }, q);
    const aEl = h("div", { class: "msg a", "aria-busy": "true" }, h("p", { class: "muted" }, "Thinking…"));
    log.append(qEl, aEl);
    let streamed = "";
    const body = { message: q, conversation_id: conversationId, ...(cfg.collection ? { collections: [cfg.collection] } : {}), ...(cfg.adapter ? { adapter: cfg.adapter } : {}) };
    try {
      for await (const event of streamChat(body)) {
        if (event.type === "token") {
          streamed += event.text;
          aEl.replaceChildren(markdown(streamed));
        } else {
          const { answer, message_id: messageId } = event.data;
          conversationId = event.data.conversation_id || conversationId;
          const cites = citationTools(answer.citations);
          aEl.replaceChildren(markdown(answer.text, (n) => cites.chip(n, () => aEl)));
          aEl.append(...[railNotice(answer.guardrails), cites.list(), messageId ? votes(messageId) : null].filter(Boolean));
        }
        log.scrollTop = log.scrollHeight;
      }
      question.value = "";
    } catch (error) {
      if (!streamed) { qEl.remove(); aEl.remove(); } else aEl.append(h("p", { class: "muted" }, "The answer was interrupted."));
      question.value = q;
      showAlert(alertBox, error, () => ask(q));
    } finally {
      aEl.removeAttribute("aria-busy");
      busy = false;
      send.disabled = false;
    }
  }
  chatForm.addEventListener("submit", (e) => { e.preventDefault(); ask(question.value); });
  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(question.value); }
  });

  // ---- agent mode: draft a reply ------------------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = h("textarea", { "aria-hidden": "true", style: null });
    area.value = text;
    shadow.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }
  async function draftReply(ticketText, options = {}) {
    const text = String(ticketText || "").trim();
    if (!text) throw new ApiError("invalid", "The ticket is empty.");
    open("draft");
    ticket.value = text;
    draftAlert.hidden = true;
    draftBtn.disabled = true;
    result.setAttribute("aria-busy", "true");
    result.replaceChildren(h("p", { class: "muted" }, "Drafting a reply…"));
    const collections = options.collections || (cfg.collection ? [cfg.collection] : undefined);
    const adapter = options.adapter || cfg.adapter || undefined;
    try {
      const res = await call("/v1/tickets/draft", { json: { ticket: text, ...(collections ? { collections } : {}), ...(adapter ? { adapter } : {}) } });
      const data = await res.json();
      const cites = citationTools(data.citations);
      const sources = (data.citations || []).map((c) => `[${c.number}] ${c.document}${c.page ? `, page ${c.page}` : ""}`);
      const plain = sources.length ? `${data.draft}\n\nSources:\n${sources.join("\n")}` : data.draft;
      const copyStatus = h("span", { class: "muted", role: "status" });
      const copy = h("button", { type: "button", class: "plain", onclick: async () => {
        try { await copyText(plain); copyStatus.textContent = "Copied to the clipboard."; } catch { copyStatus.textContent = "Copy failed: select the text instead."; }
      } }, "Copy draft");
      const draftBody = h("div", { class: "msg a draft-text" });
      draftBody.append(markdown(data.draft, (n) => cites.chip(n, () => draftBody)));
      result.replaceChildren(h("h3", {}, data.refused ? "No grounded draft" : "Suggested reply"), draftBody,
        ...[railNotice(data.guardrails), cites.list()].filter(Boolean), h("div", { class: "votes" }, copy, copyStatus));
      copy.focus();
      return data;
    } catch (error) {
      result.replaceChildren();
      showAlert(draftAlert, error, () => draftReply(text, options));
      throw error;
    } finally {
      result.removeAttribute("aria-busy");
      draftBtn.disabled = false;
    }
  }
  draftForm.addEventListener("submit", (e) => { e.preventDefault(); draftReply(ticket.value).catch(() => {}); });

  const mount = () => document.body.append(host);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.Ragtune = Object.freeze({
    version: "1",
    open: () => open(),
    close,
    ask: (q) => { open(); return ask(q); },
    draftReply,
  });
})();
