// The cited passage in a modal dialog (document, page, heading, snippet) and a link to the document itself.
// The file is fetched with the key (a plain link could not send it) and handed to the browser as a blob:
// PDFs and plain text open in a new tab (PDFs at the cited page); other types, HTML included, download, so
// an uploaded page never runs as this site.

import { h, replace } from "../shared/dom.js";
import { describeError } from "../shared/errors.js";

const VIEWABLE = { "application/pdf": "application/pdf", "text/plain": "text/plain", "text/markdown": "text/plain", "text/csv": "text/plain" };

export class CitationDialog {
  constructor(dialog, client) {
    this.dialog = dialog;
    this.client = client;
    this.citation = null;
    this.opener = null;
    this.objectUrl = null;
    this.documentIds = new Map(); // "collection\u0000name" -> document id, filled from GET /v1/documents
    this.$ = (id) => dialog.querySelector(`#${id}`);
    this.$("citation-close").addEventListener("click", () => dialog.close());
    this.$("citation-open").addEventListener("click", () => this.openDocument());
    dialog.addEventListener("close", () => {
      if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = null;
      if (this.opener && this.opener.isConnected) this.opener.focus();
    });
  }

  open(citation, opener) {
    this.citation = citation;
    this.opener = opener;
    const page = citation.page ? (citation.page_end && citation.page_end !== citation.page ? `${citation.page}–${citation.page_end}` : String(citation.page)) : null;
    const fact = (term, value) => (value ? [h("dt", {}, term), h("dd", {}, value)] : []);
    this.$("citation-title").textContent = `Source ${citation.number}: ${citation.document}`;
    replace(this.$("citation-facts"),
      fact("Document", citation.document), fact("Collection", citation.collection), fact("Page", page),
      fact("Section", citation.heading));
    this.$("citation-snippet").textContent = citation.snippet || "";
    replace(this.$("citation-status"));
    this.$("citation-open").disabled = false;
    if (!this.dialog.open) this.dialog.showModal();
    this.$("citation-close").focus();
  }

  async documentId(citation) {
    const key = `${citation.collection}\u0000${citation.document}`;
    if (!this.documentIds.has(key)) {
      const query = citation.collection ? `?collection=${encodeURIComponent(citation.collection)}` : "";
      const { documents } = await this.client.get(`/v1/documents${query}`);
      for (const doc of documents) {
        this.documentIds.set(`${doc.collection}\u0000${doc.name}`, doc.id);
        // Citations stored before collections were recorded carry none: match those by name.
        if (!citation.collection && doc.name === citation.document) this.documentIds.set(key, doc.id);
      }
    }
    return this.documentIds.get(key);
  }

  async openDocument() {
    const citation = this.citation;
    const status = this.$("citation-status");
    status.textContent = "Fetching the document…";
    try {
      const id = await this.documentId(citation);
      if (id === undefined) {
        status.textContent = "This document is no longer in the collection.";
        return;
      }
      const response = await this.client.fetch("GET", `/v1/documents/${id}/file`);
      const type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
      const viewAs = VIEWABLE[type];
      const blob = new Blob([await response.arrayBuffer()], { type: viewAs || "application/octet-stream" });
      if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = URL.createObjectURL(blob);
      const href = viewAs === "application/pdf" && citation.page ? `${this.objectUrl}#page=${citation.page}` : this.objectUrl;
      const link = h("a", { href, target: "_blank", rel: "noopener", class: "document-link", download: viewAs ? null : citation.document },
        viewAs ? `Open ${citation.document}${citation.page ? ` at page ${citation.page}` : ""} (new tab)` : `Download ${citation.document}`);
      replace(status, link);
      this.$("citation-open").disabled = true;
      link.focus();
    } catch (error) {
      const info = describeError(error);
      status.textContent = error.code === "file_unavailable" ? "The original file was not kept for this document." : `${info.title}: ${info.detail}`;
    }
  }
}
