// The message thread: questions, answers rendered from Markdown as tokens arrive, citation chips, the
// guardrail notice and the feedback controls under each stored answer.

import { h, replace } from "../shared/dom.js";
import { describeRail } from "../shared/errors.js";
import { renderMarkdown } from "../shared/markdown.js";
import { feedbackControls } from "./feedback.js";

function citationLabel(citation) {
  const page = citation.page ? (citation.page_end && citation.page_end !== citation.page ? `pages ${citation.page}–${citation.page_end}` : `page ${citation.page}`) : "";
  return [citation.document, page, citation.heading].filter(Boolean).join(" · ");
}

function modelLabel(answer) {
  if (!answer) return "";
  return answer.adapter ? `${answer.model} + ${answer.adapter}` : `${answer.model} (base)`;
}

export class Thread {
  constructor(root, client, dialog) {
    this.root = root;
    this.client = client;
    this.dialog = dialog;
  }

  clear() {
    replace(this.root);
  }

  /** A stored conversation's messages (GET /v1/conversations/{id}). */
  showHistory(messages) {
    this.clear();
    for (const message of messages || []) {
      if (message.role === "user") this.root.append(this.question(message.content));
      else {
        const answer = {
          text: message.content, citations: message.citations || [], refused: message.refused,
          model: message.model, adapter: message.adapter, guardrails: [],
        };
        const article = this.answerShell();
        this.fill(article, answer, message.id, message.finish_reason);
        this.root.append(article);
      }
    }
    this.scroll();
  }

  question(text) {
    return h("article", { class: "msg user", "aria-label": "You asked" }, h("p", {}, text));
  }

  answerShell() {
    return h("article", { class: "msg assistant", "aria-label": "Answer" },
      h("p", { class: "meta" }, "Assistant"),
      h("div", { class: "body" }));
  }

  /** Start a question/answer pair; returns the live answer's handle (token, finish, fail). */
  startTurn(questionText) {
    this.root.append(this.question(questionText));
    const article = this.answerShell();
    article.setAttribute("aria-busy", "true");
    const body = article.querySelector(".body");
    body.append(h("p", { class: "typing" }, "Thinking…"));
    this.root.append(article);
    this.scroll();
    let text = "";
    let frame = 0;
    const render = () => {
      frame = 0;
      replace(body, renderMarkdown(text, { citation: (n) => h("span", { class: "chip pending" }, String(n)) }));
      this.scroll();
    };
    return {
      token: (piece) => {
        text += piece;
        article.classList.add("streaming");
        if (!frame) frame = requestAnimationFrame(render);
      },
      finish: (data) => {
        cancelAnimationFrame(frame);
        article.classList.remove("streaming");
        article.removeAttribute("aria-busy");
        this.fill(article, data.answer, data.message_id, data.answer.finish_reason);
        this.scroll();
      },
      fail: (error) => {
        cancelAnimationFrame(frame);
        const stopped = error && error.name === "AbortError";
        if (!text && !stopped) {
          // Refused before any answer (offline, 429, 503...): the question goes back into the box for a retry.
          article.previousElementSibling.remove();
          article.remove();
          return;
        }
        article.classList.remove("streaming");
        article.removeAttribute("aria-busy");
        if (text) render();
        else replace(body);
        article.append(h("p", { class: "hint interrupted" }, stopped ? "Stopped." : "The answer could not be completed."));
      },
    };
  }

  /** Render a complete answer with its citations, guardrail notice and feedback. */
  fill(article, answer, messageId, finishReason) {
    const citations = new Map((answer.citations || []).map((c) => [c.number, c]));
    const chip = (n) => {
      const citation = citations.get(n);
      if (!citation) return null;
      return h("button", {
        type: "button", class: "chip", "aria-label": `Source ${n}: ${citationLabel(citation)}`,
        onclick: (event) => this.dialog.open(citation, event.currentTarget),
      }, String(n));
    };
    article.querySelector(".meta").textContent = `Assistant · ${modelLabel(answer)}`.replace(/ · $/, "");
    replace(article.querySelector(".body"), renderMarkdown(answer.text, { citation: chip }));
    if (answer.guardrails && answer.guardrails.length) {
      const seen = [...new Set(answer.guardrails.map(describeRail))];
      article.append(h("p", { class: "notice guardrail", role: "note" },
        h("strong", {}, "Guardrails: "), `${seen.join("; ")}.`));
    }
    if (citations.size) {
      article.append(h("div", { class: "sources" },
        h("h2", { class: "sources-title" }, "Sources"),
        h("ol", {}, [...citations.values()].map((c) => h("li", {},
          h("button", { type: "button", class: "source", onclick: (event) => this.dialog.open(c, event.currentTarget) },
            h("span", { class: "chip", "aria-hidden": "true" }, String(c.number)), citationLabel(c)))))));
    }
    if (finishReason === "cancelled" || finishReason === "error") {
      article.append(h("p", { class: "hint interrupted" }, "This answer was interrupted."));
    }
    if (messageId) article.append(feedbackControls(this.client, messageId));
  }

  scroll() {
    this.root.scrollTop = this.root.scrollHeight;
  }
}
