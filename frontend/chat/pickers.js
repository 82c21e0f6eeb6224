// The model (adapter) and collection pickers of the top bar: what the next question is asked with.

import { h, replace } from "../shared/dom.js";

export class Pickers {
  constructor(modelSelect, collectionSelect, client) {
    this.model = modelSelect;
    this.collection = collectionSelect;
    this.client = client;
  }

  /** GET /v1/models (base + resident adapters) and GET /v1/collections. */
  async load() {
    const [models, collections] = await Promise.all([
      this.client.get("/v1/models"),
      // A server without the collections route still answers over everything the key may read.
      this.client.get("/v1/collections").catch((error) => {
        if (error.kind === "not_found") return { collections: [] };
        throw error;
      }),
    ]);
    const ids = (models.data || []).map((m) => m.id);
    const [base, ...adapters] = ids;
    const keepModel = this.model.value;
    replace(this.model,
      h("option", { value: "" }, "Default (promoted)"),
      h("option", { value: "base" }, base ? `Base model (${base})` : "Base model"),
      adapters.map((name) => h("option", { value: name }, name)));
    if ([...this.model.options].some((o) => o.value === keepModel)) this.model.value = keepModel;
    const keepCollection = this.collection.value;
    replace(this.collection,
      h("option", { value: "" }, "All I may read"),
      (collections.collections || []).map((c) => h("option", { value: c.name }, `${c.name} (${c.documents})`)));
    if ([...this.collection.options].some((o) => o.value === keepCollection)) this.collection.value = keepCollection;
  }

  /** The chat request fields for the current choice. */
  choice() {
    const choice = {};
    if (this.model.value) choice.adapter = this.model.value;
    if (this.collection.value) choice.collections = [this.collection.value];
    return choice;
  }
}
