// Documents: upload (a background ingestion job, watched until it ends), the jobs list, documents per
// collection with delete.

import { h, replace, when } from "../shared/dom.js";
import { badge, fillTable, number, size } from "./table.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000; // how often running jobs are refreshed

export class Documents {
  constructor(client, fail) {
    this.client = client;
    this.fail = fail;
    this.timer = null;
    $("upload-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.upload();
    });
    $("documents-collection").addEventListener("change", () => this.loadDocuments().catch(this.fail));
  }

  async load() {
    await Promise.all([this.loadCollections(), this.loadJobs()]);
    await this.loadDocuments();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async loadCollections() {
    const { collections } = await this.client.get("/v1/collections");
    const select = $("documents-collection");
    const keep = select.value;
    replace(select, h("option", { value: "" }, "All collections"),
      collections.map((c) => h("option", { value: c.name }, `${c.name} (${c.documents})`)));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    replace($("collection-names"), collections.map((c) => h("option", { value: c.name })));
  }

  async loadDocuments() {
    const collection = $("documents-collection").value;
    const query = collection ? `?collection=${encodeURIComponent(collection)}` : "";
    const { documents } = await this.client.get(`/v1/documents${query}`);
    fillTable($("documents-table"), "Documents", ["Name", "Collection", "Pages", "Chunks", "Size", "Ingested", ""],
      documents.map((d) => [
        d.name, d.collection, number(d.pages), number(d.chunks), size(d.size_bytes),
        when(d.ingested_at),
        h("button", { type: "button", class: "danger small", "aria-label": `Delete ${d.name} from ${d.collection}`,
          onclick: () => this.remove(d) }, "Delete"),
      ]), "No documents yet.");
  }

  async remove(doc) {
    if (!window.confirm(`Delete ${doc.name} from ${doc.collection}? Its chunks leave the index.`)) return;
    try {
      await this.client.delete(`/v1/documents/${doc.id}`);
      await Promise.all([this.loadDocuments(), this.loadCollections()]);
      $("documents-status").textContent = `Deleted ${doc.name}.`;
      $("documents-collection").focus();
    } catch (error) {
      this.fail(error, () => this.remove(doc));
    }
  }

  async upload() {
    const input = $("upload-files");
    const collection = $("upload-collection").value.trim();
    const status = $("upload-status");
    if (!input.files.length) {
      status.textContent = "Choose one or more files first.";
      input.focus();
      return;
    }
    const form = new FormData();
    for (const file of input.files) form.append("files", file, file.name);
    if (collection) form.append("collection", collection);
    status.textContent = `Uploading ${input.files.length} file(s)…`;
    try {
      const job = await this.client.request("POST", "/v1/documents", { body: form });
      status.textContent = `Upload received: job ${job.job_id} is ${job.status}.`;
      input.value = "";
      await this.loadJobs();
    } catch (error) {
      status.textContent = "";
      this.fail(error, () => this.upload());
    }
  }

  async loadJobs() {
    const { jobs } = await this.client.get("/v1/jobs");
    fillTable($("jobs-table"), "Ingestion jobs", ["Job", "Collection", "Files", "Status", "Started", "Outcome"],
      jobs.map((job) => [
        h("code", {}, job.id.slice(0, 8)), job.collection, (job.inputs.files || []).join(", "), badge(job.status),
        when(job.created_at), outcome(job),
      ]), "No ingestion jobs yet.");
    const running = jobs.some((job) => job.status === "queued" || job.status === "running");
    const watched = this.running;
    this.running = running;
    clearTimeout(this.timer);
    if (running) {
      this.timer = setTimeout(() => this.loadJobs().catch(this.fail), POLL_MS);
    } else if (watched) {
      // A job just ended: its documents are in the list now.
      await Promise.all([this.loadDocuments(), this.loadCollections()]);
      const last = jobs[0];
      if (last) $("upload-status").textContent = `Job ${last.id.slice(0, 8)} ${last.status}: ${outcome(last)}`;
    }
  }
}

/** "2 ingested, 1 failed (bad.pdf: not a PDF)" from a job's report. */
function outcome(job) {
  if (job.error) return job.error;
  const files = (job.report && job.report.files) || [];
  if (!files.length) return job.status === "done" ? "done" : "";
  const counts = {};
  for (const file of files) counts[file.status] = (counts[file.status] || 0) + 1;
  const failed = files.filter((f) => f.reason).map((f) => `${String(f.path).split(/[\\/]/).pop()}: ${f.reason}`);
  return `${Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(", ")}${failed.length ? ` (${failed.join("; ")})` : ""}`;
}
