// Evaluation runs and their scorecards. A scorecard is fetched with the key and shown in a sandboxed frame
// (no scripts, its own opaque origin), with a download link for reading it full-size.

import { h, replace, when } from "../shared/dom.js";
import { fillTable, number } from "./table.js";

const $ = (id) => document.getElementById(id);
const HEADLINE = ["token_f1", "context_recall", "citation_rate", "false_refusal_rate"]; // shown in the list

export class Evals {
  constructor(client, fail) {
    this.client = client;
    this.fail = fail;
    this.url = null;
  }

  async load() {
    const { runs } = await this.client.get("/v1/evals");
    fillTable($("evals-table"), "Evaluation runs", ["Run", "Started", "Variants", "Headline metrics", ""],
      runs.map((run) => [
        h("code", {}, run.id), when(run.created_at), (run.variants || []).join(", "),
        h("ul", { class: "plain-list" }, Object.entries(run.summary || {}).map(([variant, values]) => h("li", {},
          h("strong", {}, `${variant}: `),
          HEADLINE.filter((m) => typeof (values || {})[m] === "number").map((m) => `${m} ${number(values[m])}`).join(", ")))),
        run.has_scorecard === false ? h("span", { class: "hint" }, "no scorecard") : h("button", {
          type: "button", class: "secondary small", "aria-label": `View the scorecard of ${run.id}`, onclick: () => this.show(run.id),
        }, "View scorecard"),
      ]), "No evaluation runs yet (ragtune eval).");
    const status = $("evals-status");
    replace(status);
    if (runs.length) {
      status.append(h("button", { type: "button", onclick: () => this.show("latest") }, "View the latest scorecard"));
    }
  }

  async show(runId) {
    const frame = $("scorecard-frame");
    try {
      const response = await this.client.fetch("GET", `/v1/evals/${encodeURIComponent(runId)}/scorecard`);
      const html = await response.text();
      if (this.url) URL.revokeObjectURL(this.url);
      this.url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      frame.src = this.url;
      frame.hidden = false;
      const status = $("evals-status");
      replace(status, `Scorecard of ${runId === "latest" ? "the latest run" : runId}. `,
        h("a", { href: this.url, download: `scorecard-${runId}.html` }, "Download it"), " to read it full-size.");
      frame.focus();
    } catch (error) {
      this.fail(error, () => this.show(runId));
    }
  }
}
