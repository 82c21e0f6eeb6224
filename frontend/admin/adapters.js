// Adapters: every registry version with its training metrics and scorecards; promote one, roll back a name.

import { h, when } from "../shared/dom.js";
import { badge, fillTable, number } from "./table.js";

const $ = (id) => document.getElementById(id);

/** "rag+lora: token_f1 0.470, false_refusal_rate 0.100" for each variant a scorecard recorded. */
function scores(scorecards) {
  const lines = Object.entries(scorecards || {}).map(([variant, metrics]) => {
    const shown = typeof metrics === "object" && metrics
      ? Object.entries(metrics).filter(([, v]) => typeof v === "number").slice(0, 4).map(([k, v]) => `${k} ${number(v)}`).join(", ")
      : String(metrics);
    return h("li", {}, h("strong", {}, `${variant}: `), shown);
  });
  return lines.length ? h("ul", { class: "plain-list" }, lines) : h("span", { class: "hint" }, "not evaluated");
}

function metrics(values) {
  const shown = Object.entries(values || {}).map(([k, v]) => `${k} ${number(v)}`);
  return shown.length ? shown.join(", ") : "";
}

export class Adapters {
  constructor(client, fail) {
    this.client = client;
    this.fail = fail;
  }

  async load() {
    const { adapters } = await this.client.get("/v1/adapters");
    const names = [...new Set(adapters.map((a) => a.name))];
    fillTable($("adapters-table"), "Adapter versions", ["Version", "Status", "Trained", "Training", "Scorecards", ""],
      adapters.map((a) => [
        h("code", {}, a.ref), a.promoted ? badge("promoted") : "", when(a.created_at),
        metrics(a.metrics), scores(a.scorecards),
        a.promoted
          ? (names.includes(a.name) && adapters.filter((x) => x.name === a.name).length > 1
            ? h("button", { type: "button", class: "secondary small", "aria-label": `Roll back ${a.name} to its previous version`, onclick: () => this.rollback(a.name) }, "Roll back")
            : "")
          : h("button", { type: "button", class: "small", "aria-label": `Promote ${a.ref}`, onclick: () => this.promote(a) }, "Promote"),
      ]), "No adapters in the registry yet (ragtune finetune).");
  }

  async promote(adapter) {
    try {
      const result = await this.client.post(`/v1/adapters/${encodeURIComponent(adapter.name)}/promote`, { version: adapter.version });
      this.report(result);
    } catch (error) {
      this.fail(error, () => this.promote(adapter));
    }
  }

  async rollback(name) {
    try {
      this.report(await this.client.post(`/v1/adapters/${encodeURIComponent(name)}/rollback`));
    } catch (error) {
      this.fail(error, () => this.rollback(name));
    }
  }

  async report(result) {
    const ref = result.adapter ? result.adapter.ref : "";
    $("adapters-status").textContent = result.message || `${ref} is promoted${result.restart_required ? "; restart the server to apply it" : ""}.`;
    await this.load();
    $("adapters-title").focus();
  }
}
