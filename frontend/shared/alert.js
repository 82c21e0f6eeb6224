// The error state both pages show: a title, what happened, a countdown when the server sent Retry-After,
// and a Retry button (focused, so a keyboard user can retry at once).

import { h, replace } from "./dom.js";
import { describeError } from "./errors.js";
import { icon } from "./icons.js";

export class ErrorAlert {
  /** @param {HTMLElement} region an element with role="alert" that this object fills and empties */
  constructor(region) {
    this.region = region;
    this.timer = null;
  }

  clear() {
    clearInterval(this.timer);
    this.timer = null;
    this.region.hidden = true;
    replace(this.region);
  }

  /**
   * Show `error`; `onRetry` (if given and the error is retryable) is called by the Retry button.
   * @param {{title?: string, detail?: string}} words replace the usual title or text (a page knows its context)
   * @returns {ReturnType<typeof describeError>}
   */
  show(error, onRetry = null, words = {}) {
    this.clear();
    const info = { ...describeError(error), ...words };
    const countdown = h("span", { class: "countdown" });
    const retry = info.retry && onRetry
      ? h("button", { type: "button", class: "retry", onclick: () => { this.clear(); onRetry(); } }, "Retry")
      : null;
    const close = h("button", { type: "button", class: "ghost", "aria-label": "Dismiss this message", onclick: () => this.clear() }, icon("close"));
    replace(
      this.region,
      h("div", { class: "alert-body" }, h("strong", { class: "alert-title" }, info.title), h("p", {}, info.detail), countdown),
      h("div", { class: "alert-actions" }, retry, close),
    );
    this.region.dataset.kind = (error && error.kind) || "error";
    this.region.hidden = false;
    this.region.scrollIntoView({ block: "nearest" });
    if (info.retryAfterS && retry) {
      let left = info.retryAfterS;
      const tick = () => {
        countdown.textContent = left > 0 ? `The server asks to wait ${left} s before retrying.` : "You can retry now.";
        retry.disabled = left > 0;
        if (left <= 0) clearInterval(this.timer);
        left -= 1;
      };
      tick();
      this.timer = setInterval(tick, 1000);
    }
    if (retry && !retry.disabled) retry.focus();
    return info;
  }
}
