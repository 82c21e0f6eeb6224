// The conversation list: newest first, open one, delete one (with a confirmation).

import { h, replace, when } from "../shared/dom.js";
import { icon } from "../shared/icons.js";

export class History {
  /** @param {{open: (id: string) => void, deleted: (id: string) => void, failed: (error: Error, retry: () => void) => void}} on */
  constructor(list, empty, client, on) {
    this.list = list;
    this.empty = empty;
    this.client = client;
    this.on = on;
    this.selected = null;
  }

  clear() {
    replace(this.list);
    this.empty.hidden = false;
  }

  async load() {
    const { conversations } = await this.client.get("/v1/conversations?limit=50");
    replace(this.list, conversations.map((c) => this.item(c)));
    this.empty.hidden = conversations.length > 0;
    this.select(this.selected);
  }

  item(conversation) {
    const title = conversation.title || "Untitled";
    return h("li", { class: "conversation", dataset: { id: conversation.id } },
      h("button", { type: "button", class: "open", onclick: () => this.on.open(conversation.id) },
        h("span", { class: "title" }, title),
        h("span", { class: "hint" }, when(conversation.updated_at || conversation.created_at))),
      h("button", {
        type: "button", class: "ghost delete", "aria-label": `Delete conversation: ${title}`,
        onclick: () => this.remove(conversation.id, title),
      }, icon("trash")));
  }

  select(id) {
    this.selected = id;
    for (const item of this.list.children) {
      const open = item.querySelector("button.open");
      if (item.dataset.id === id) open.setAttribute("aria-current", "true");
      else open.removeAttribute("aria-current");
    }
  }

  async remove(id, title) {
    if (!window.confirm(`Delete the conversation “${title}”? This cannot be undone.`)) return;
    try {
      await this.client.delete(`/v1/conversations/${encodeURIComponent(id)}`);
      const item = [...this.list.children].find((li) => li.dataset.id === id);
      const next = item && (item.nextElementSibling || item.previousElementSibling);
      item && item.remove();
      this.empty.hidden = this.list.children.length > 0;
      this.on.deleted(id);
      // Keep keyboard focus in the list rather than dropping it on the page body.
      (next ? next.querySelector("button.open") : document.getElementById("new-chat")).focus();
    } catch (error) {
      this.on.failed(error, () => this.remove(id, title));
    }
  }
}
