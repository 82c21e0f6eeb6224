// Thumbs up/down under an answer, then an optional comment; voting again replaces the earlier vote.

import { h } from "../shared/dom.js";
import { describeError } from "../shared/errors.js";
import { icon } from "../shared/icons.js";

let counter = 0;

/** The feedback controls of one stored answer (POST /v1/messages/{id}/feedback). */
export function feedbackControls(client, messageId) {
  const id = `fb-${++counter}`;
  let rating = null;
  const status = h("span", { class: "hint", role: "status" });
  const comment = h("textarea", { id: `${id}-comment`, rows: 2, maxlength: 4000 });
  const form = h("form", { class: "feedback-comment", hidden: true },
    h("label", { for: `${id}-comment` }, "What was wrong or missing? (optional)"),
    comment,
    h("button", { type: "submit", class: "secondary" }, "Send comment"));

  async function send(value, text = null) {
    status.textContent = "Sending…";
    try {
      await client.post(`/v1/messages/${encodeURIComponent(messageId)}/feedback`, { rating: value, comment: text || null });
      rating = value;
      up.setAttribute("aria-pressed", String(value === "up"));
      down.setAttribute("aria-pressed", String(value === "down"));
      status.textContent = text ? "Thanks, your comment was saved." : "Thanks for the feedback.";
      return true;
    } catch (error) {
      status.textContent = `Not saved: ${describeError(error).title}.`;
      return false;
    }
  }

  const vote = (value) => async () => {
    if (await send(value)) {
      form.hidden = false;
      if (value === "down") comment.focus();
    }
  };
  const up = h("button", { type: "button", class: "vote", "aria-pressed": "false", "aria-label": "Helpful answer", title: "Helpful", onclick: vote("up") }, icon("thumbs-up"));
  const down = h("button", { type: "button", class: "vote", "aria-pressed": "false", "aria-label": "Unhelpful answer", title: "Not helpful", onclick: vote("down") }, icon("thumbs-down"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (rating && (await send(rating, comment.value.trim()))) form.hidden = true;
  });
  return h("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" },
    h("span", { class: "hint" }, "Was this helpful?"), up, down, status, form);
}
