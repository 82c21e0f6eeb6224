// The improvement loop: the review queue, retraining, the staged rollout with its live readout, the drift watch.

import { h, replace, when } from "../shared/dom.js";
import { badge, fillTable, number } from "./table.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function percent(value) {
  return typeof value === "number" ? `${(value * 100).toFixed(1)}%` : "–";
}

/** "62.0% [55.1%, 68.4%] of 120" for a rate with its interval. */
function rate(r) {
  return r && r.n ? `${percent(r.rate)} [${percent(r.low)}, ${percent(r.high)}] of ${r.n}` : "no data";
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const child of children) el.append(child);
  return el;
}

/** A small line chart of one figure over the drift watch's history (values in [0, 1]). */
function chart(label, points) {
  const width = 240, height = 60;
  const values = points.filter((p) => typeof p === "number");
  const path = values.map((v, i) => `${i ? "L" : "M"}${(i / Math.max(1, values.length - 1)) * width},${height - v * height}`).join(" ");
  const title = svg("title", {});
  title.textContent = `${label}: latest ${values.length ? number(values[values.length - 1]) : "none"}`;
  return h("figure", { class: "spark" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title.textContent },
      title, svg("rect", { x: 0, y: 0, width, height, class: "spark-bg" }), svg("path", { d: path || "M0,0", class: "spark-line" })),
    h("figcaption", {}, title.textContent));
}

export class Loop {
  constructor(client, fail) {
    this.client = client;
    this.fail = fail;
    $("review-status-filter").onchange = () => this.loadReviews().catch((e) => this.fail(e));
    $("rollout-form").onsubmit = (event) => { event.preventDefault(); this.startRollout(); };
    $("retrain-button").onclick = () => this.retrain();
  }

  async load() {
    await Promise.all([this.loadReviews(), this.loadRollout(), this.loadDrift()]);
  }

  // --- reviews -------------------------------------------------------------------------------------
  async loadReviews() {
    const status = $("review-status-filter").value;
    const found = await this.client.get(`/v1/reviews?status=${encodeURIComponent(status)}`);
    $("reviews-counts").textContent = `Open ${found.counts.open}, accepted ${found.counts.accepted}, rejected ` +
      `${found.counts.rejected}; reviewed golden set version ${found.golden_version}.`;
    fillTable($("reviews-table"), "Review queue", ["Why", "Question", "Answer", "Comment", "Status", "Review"],
      found.items.map((item) => [
        item.reason.replace(/_/g, " "), item.question, item.answer, item.comment || "",
        badge(item.status), item.status === "open" ? this.reviewForm(item) : `${item.reviewed_by || ""} ${when(item.reviewed_at)}`,
      ]), "Nothing to review.");
  }

  reviewForm(item) {
    const id = `review-${item.id}`;
    const reference = h("textarea", { id: `${id}-reference`, rows: 3, maxlength: 4000 });
    const sources = h("input", { id: `${id}-sources`, type: "text", placeholder: "handbook.pdf:12", value: item.sources.map((s) => s.page ? `${s.document}:${s.page}` : s.document).join(", ") });
    const unanswerable = h("input", { id: `${id}-unanswerable`, type: "checkbox" });
    const training = h("input", { id: `${id}-training`, type: "checkbox" });
    const note = h("input", { id: `${id}-note`, type: "text", maxlength: 2000 });
    const accept = () => this.decide(item, "accept", {
      reference: reference.value, answerable: !unanswerable.checked, training: training.checked, note: note.value,
      sources: sources.value.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
        const [document, page] = s.split(/:(?=\d+$)/);
        return page ? { document, page: Number(page) } : { document };
      }),
    });
    return h("div", { class: "review-form" },
      h("label", { for: reference.id }, "Reference answer"), reference,
      h("label", { for: sources.id }, "Source pages"), sources,
      h("label", { class: "check" }, unanswerable, " Unanswerable"),
      h("label", { class: "check" }, training, " Also a training row"),
      h("label", { for: note.id }, "Why"), note,
      h("div", { class: "row" },
        h("button", { type: "button", class: "small", onclick: accept }, "Accept"),
        h("button", { type: "button", class: "secondary small", onclick: () => this.decide(item, "reject", { note: note.value }) }, "Reject")));
  }

  async decide(item, action, body) {
    try {
      await this.client.post(`/v1/reviews/${encodeURIComponent(item.id)}/${action}`, body);
      $("reviews-status").textContent = action === "accept" ? "Accepted: added to the reviewed golden set." : "Rejected.";
      await this.loadReviews();
    } catch (error) {
      this.fail(error, () => this.decide(item, action, body));
    }
  }

  async retrain() {
    try {
      const job = await this.client.post("/v1/retrain", {});
      $("retrain-status").textContent = `Retraining (job ${job.id}); the result appears under the Documents jobs and Adapters.`;
    } catch (error) {
      this.fail(error, () => this.retrain());
    }
  }

  // --- rollout -------------------------------------------------------------------------------------
  async loadRollout() {
    const { rollout, readout } = await this.client.get("/v1/rollout");
    $("rollout-form").hidden = Boolean(rollout);
    const actions = $("rollout-actions");
    if (!rollout) {
      replace(actions);
      $("rollout-summary").textContent = "No rollout running.";
      fillTable($("rollout-table"), "Rollout readout", ["Arm"], [], "Start a rollout to compare a candidate with what serves.");
      return;
    }
    $("rollout-summary").textContent = `${percent(rollout.share)} of conversations answer with ${rollout.candidate}, ` +
      `the rest with ${rollout.control}. ${readout.verdict} (level ${percent(readout.level)}).`;
    replace(actions,
      h("button", { type: "button", onclick: () => this.endRollout("promote") }, `Promote ${rollout.candidate}`),
      h("button", { type: "button", class: "secondary", onclick: () => this.endRollout("stop") }, "Stop (roll back)"));
    fillTable($("rollout-table"), "Rollout readout", ["Arm", "Answers", "Thumbs-up", "Refusals", "Rail actions", "Latency p50 / p95 ms"],
      ["control", "candidate"].map((arm) => {
        const a = readout.arms[arm];
        return [arm, number(a.answers), rate(a.thumbs_up), rate(a.refusals), rate(a.rail_actions),
          `${number(a.latency_ms.p50)} / ${number(a.latency_ms.p95)}`];
      }), "");
  }

  async startRollout() {
    const body = { candidate: $("rollout-candidate").value.trim(), share: Number($("rollout-share").value) / 100 };
    try {
      const started = await this.client.post("/v1/rollout", body);
      $("rollout-status").textContent = started.message;
      await this.loadRollout();
    } catch (error) {
      this.fail(error, () => this.startRollout());
    }
  }

  async endRollout(action) {
    try {
      const done = await this.client.post(`/v1/rollout/${action}`);
      $("rollout-status").textContent = done.message || "Done.";
      await this.loadRollout();
    } catch (error) {
      this.fail(error, () => this.endRollout(action));
    }
  }

  // --- drift ---------------------------------------------------------------------------------------
  async loadDrift() {
    const drift = await this.client.get("/v1/drift");
    const collections = Object.entries(drift.collections || {});
    $("drift-summary").textContent = drift.reference_questions
      ? `Recent ${drift.window} questions per collection against ${drift.reference_questions} training and golden questions; alert below p = ${drift.alpha} / ${drift.window}.`
      : drift.message || "No reference questions.";
    replace($("drift-charts"), collections.length ? collections.map(([name, c]) => h("div", { class: "drift" },
      h("h4", {}, name, " ", c.latest && c.latest.alert ? badge("drift") : badge("stable")),
      chart("similarity to training questions", c.history.map((p) => p.similarity)),
      chart("drift p-value", c.history.map((p) => p.p_value)),
      chart("best retrieval score", c.history.map((p) => p.best_score)),
      chart("refusal rate", c.history.map((p) => p.refusal_rate)),
      chart("unanswered share", c.history.map((p) => p.unanswered_share)))) : h("p", { class: "hint" }, "No questions yet."));
  }
}
